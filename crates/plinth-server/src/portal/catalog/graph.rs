//! The relation graph page's layout: a bounded walk from the entity, then a
//! layered drawing (upstream left, the entity in the middle, downstream
//! right). At most [`MAX_DRAWN`] nodes are drawn; the rest collapse into one
//! "+N more" node per column and kind.

use crate::portal::view::EntityLink;
use plinth_app::catalog::{CatalogState, NodeId, RelId};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap, VecDeque};

const MAX_DRAWN: usize = 60;
/// Most nodes drawn in one column (the rest of the column collapses).
const MAX_PER_COLUMN: usize = 14;
/// Most nodes the walk visits (bounds the work on huge hubs).
const MAX_VISITED: usize = 5_000;
const COLUMN_WIDTH: i64 = 240;
const ROW_HEIGHT: i64 = 44;
const NODE_WIDTH: i64 = 190;
const NODE_HEIGHT: i64 = 30;
const PAD: i64 = 20;
const LABEL_CHARS: usize = 24;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Mode {
    /// Things that depend on the entity.
    Upstream,
    /// Things the entity depends on.
    Downstream,
    /// Every relation.
    Both,
}

impl Mode {
    pub(super) fn name(self) -> &'static str {
        match self {
            Mode::Upstream => "upstream",
            Mode::Downstream => "downstream",
            Mode::Both => "both",
        }
    }

    pub(super) fn label(self) -> &'static str {
        match self {
            Mode::Upstream => "Upstream (dependents)",
            Mode::Downstream => "Downstream (dependencies)",
            Mode::Both => "Both",
        }
    }

    fn follows(self, rel: RelId) -> bool {
        match self {
            Mode::Upstream => rel.is_dependent(),
            Mode::Downstream => rel.is_dependency(),
            Mode::Both => true,
        }
    }
}

struct Visit {
    node: NodeId,
    distance: u32,
    side: i64,
}

/// The drawn graph: an SVG of `width` × `height` with its nodes, edges and
/// a legend of the kinds drawn.
#[derive(Debug, Serialize)]
pub(super) struct Drawing {
    width: i64,
    height: i64,
    node_width: i64,
    node_height: i64,
    nodes: Vec<DrawnNode>,
    edges: Vec<DrawnEdge>,
    legend: Vec<LegendEntry>,
    /// Entities the walk reached (the root not counted).
    reached: usize,
    /// Entities drawn (the root counted).
    drawn: usize,
    /// The walk stopped at [`MAX_VISITED`].
    truncated: bool,
}

/// One box: an entity, a dangling reference, or a collapsed "+N more".
#[derive(Debug, Clone, Serialize)]
struct DrawnNode {
    label: String,
    /// Tooltip.
    title: String,
    /// The entity's page; `None` for dangling and collapsed nodes.
    href: Option<String>,
    missing: bool,
    collapsed: bool,
    root: bool,
    /// CSS class of the kind's colour.
    kclass: String,
    x: i64,
    y: i64,
    /// Where the label starts.
    tx: i64,
    ty: i64,
    /// Order within the column (kind, then label; collapsed nodes last).
    #[serde(skip)]
    sort: String,
}

impl DrawnNode {
    /// The root first, then drawn nodes, then collapsed ones.
    fn rank(&self) -> u8 {
        match (self.root, self.collapsed) {
            (true, _) => 0,
            (false, false) => 1,
            (false, true) => 2,
        }
    }
}

/// A line between neighbouring columns.
#[derive(Debug, Serialize)]
struct DrawnEdge {
    x1: i64,
    y1: i64,
    x2: i64,
    y2: i64,
    /// `from relation to`.
    title: String,
    /// A dependency relation (drawn emphasised).
    dependency: bool,
}

#[derive(Debug, Serialize)]
struct LegendEntry {
    kind: String,
    kclass: String,
}

pub(super) fn draw(state: &CatalogState, root: NodeId, depth: u32, mode: Mode) -> Drawing {
    let graph = state.graph();
    let mut seen: HashMap<NodeId, usize> = HashMap::from([(root, 0)]);
    let mut visits = vec![Visit { node: root, distance: 0, side: 0 }];
    let mut queue = VecDeque::from([0usize]);
    let mut truncated = false;
    'walk: while let Some(index) = queue.pop_front() {
        let (node, distance, side) = (visits[index].node, visits[index].distance, visits[index].side);
        if distance >= depth {
            continue;
        }
        for edge in graph.edges(node) {
            if !mode.follows(edge.rel) || seen.contains_key(&edge.to) {
                continue;
            }
            if visits.len() >= MAX_VISITED {
                truncated = true;
                break 'walk;
            }
            let side = if side != 0 {
                side
            } else if edge.rel.is_dependency() {
                1
            } else {
                -1
            };
            seen.insert(edge.to, visits.len());
            queue.push_back(visits.len());
            visits.push(Visit { node: edge.to, distance: distance + 1, side });
        }
    }

    // Nearest first: the first MAX_DRAWN are drawn, the rest collapse.
    let mut columns: BTreeMap<i64, Vec<DrawnNode>> = BTreeMap::new();
    let mut drawn_nodes: HashMap<NodeId, (i64, usize)> = HashMap::new();
    let mut hidden: BTreeMap<(i64, String), usize> = BTreeMap::new();
    let mut legend: BTreeMap<String, String> = BTreeMap::new();
    for (i, visit) in visits.iter().enumerate() {
        let column = visit.side * i64::from(visit.distance);
        let in_column = columns.get(&column).map_or(0, Vec::len);
        if i > 0 && (drawn_nodes.len() >= MAX_DRAWN || in_column >= MAX_PER_COLUMN) {
            let kind = match state.entity(visit.node) {
                Some(record) => record.summary.kind.to_string(),
                None => state.ref_of(visit.node).split_once(':').map_or("", |(k, _)| k).to_string(),
            };
            *hidden.entry((column, kind)).or_default() += 1;
            continue;
        }
        let link = EntityLink::node(state, visit.node);
        let kind = link.kind;
        legend.insert(kind.to_lowercase(), kind_class(&kind));
        let entry = columns.entry(column).or_default();
        drawn_nodes.insert(visit.node, (column, entry.len()));
        entry.push(DrawnNode {
            label: short(&link.label),
            title: format!("{} ({})", link.entity_ref, kind),
            href: link.href,
            missing: link.missing,
            collapsed: false,
            root: visit.node == root,
            kclass: kind_class(&kind),
            x: 0,
            y: 0,
            tx: 0,
            ty: 0,
            sort: format!("{}\u{0}{}", kind.to_lowercase(), link.label.to_lowercase()),
        });
    }
    for ((column, kind), count) in &hidden {
        columns.entry(*column).or_default().push(DrawnNode {
            label: format!("+{count}{} more {}", if truncated { "+" } else { "" }, kind),
            title: format!("{count} more {kind} entities not drawn"),
            href: None,
            missing: false,
            collapsed: true,
            root: false,
            kclass: kind_class(kind),
            x: 0,
            y: 0,
            tx: 0,
            ty: 0,
            sort: format!("\u{ffff}{kind}"),
        });
    }
    // Sort each column, remembering where each drawn node landed.
    let mut position: HashMap<(i64, usize), usize> = HashMap::new();
    for (column, nodes) in columns.iter_mut() {
        let mut order: Vec<usize> = (0..nodes.len()).collect();
        order.sort_by(|a, b| {
            let (a, b) = (&nodes[*a], &nodes[*b]);
            (a.rank(), &a.sort).cmp(&(b.rank(), &b.sort))
        });
        let sorted: Vec<DrawnNode> = order.iter().map(|i| nodes[*i].clone()).collect();
        for (row, original) in order.iter().enumerate() {
            position.insert((*column, *original), row);
        }
        *nodes = sorted;
    }
    let min_column = columns.keys().next().copied().unwrap_or(0);
    let tallest = columns.values().map(Vec::len).max().unwrap_or(1) as i64;
    let height = tallest * ROW_HEIGHT + 2 * PAD;
    let place = |column: i64, row: usize, count: usize| -> (i64, i64) {
        let x = PAD + (column - min_column) * COLUMN_WIDTH;
        let offset = (tallest - count as i64) * ROW_HEIGHT / 2;
        (x, PAD + offset + row as i64 * ROW_HEIGHT)
    };
    let mut nodes = Vec::new();
    for (column, items) in &columns {
        for (row, item) in items.iter().enumerate() {
            let (x, y) = place(*column, row, items.len());
            nodes.push(DrawnNode { x, y, tx: x + 10, ty: y + NODE_HEIGHT / 2 + 5, ..item.clone() });
        }
    }
    let coordinates = |node: NodeId| -> Option<(i64, i64)> {
        let (column, original) = drawn_nodes.get(&node)?;
        let row = position.get(&(*column, *original))?;
        Some(place(*column, *row, columns.get(column)?.len()))
    };
    let mut edges = Vec::new();
    for node in drawn_nodes.keys() {
        for edge in graph.edges(*node) {
            if !edge.rel.is_canonical()
                || (mode != Mode::Both && !mode.follows(edge.rel) && !mode.follows(edge.rel.inverse()))
            {
                continue;
            }
            let (Some((x1, y1)), Some((x2, y2))) = (coordinates(*node), coordinates(edge.to)) else { continue };
            if (x1 - x2).abs() != COLUMN_WIDTH {
                // Only neighbouring columns: longer lines would run through other nodes.
                continue;
            }
            let ((ax, ay), (bx, by)) = if x1 < x2 {
                ((x1 + NODE_WIDTH, y1 + NODE_HEIGHT / 2), (x2, y2 + NODE_HEIGHT / 2))
            } else {
                ((x1, y1 + NODE_HEIGHT / 2), (x2 + NODE_WIDTH, y2 + NODE_HEIGHT / 2))
            };
            edges.push(DrawnEdge {
                x1: ax,
                y1: ay,
                x2: bx,
                y2: by,
                title: format!("{} {} {}", state.ref_of(*node), edge.rel.name(), state.ref_of(edge.to)),
                dependency: edge.rel.is_dependency() || edge.rel.is_dependent(),
            });
        }
    }
    let legend: Vec<LegendEntry> = legend.into_iter().map(|(kind, kclass)| LegendEntry { kind, kclass }).collect();
    let width = (columns.len() as i64 - 1).max(0) * COLUMN_WIDTH + NODE_WIDTH + 2 * PAD;
    Drawing {
        width,
        height,
        node_width: NODE_WIDTH,
        node_height: NODE_HEIGHT,
        nodes,
        edges,
        legend,
        reached: visits.len() - 1,
        drawn: drawn_nodes.len(),
        truncated,
    }
}

fn short(label: &str) -> String {
    if label.chars().count() <= LABEL_CHARS {
        label.to_string()
    } else {
        let mut out: String = label.chars().take(LABEL_CHARS - 1).collect();
        out.push('…');
        out
    }
}

/// A CSS class for a kind's colour.
pub(super) fn kind_class(kind: &str) -> String {
    let clean: String = kind.to_lowercase().chars().filter(|c| c.is_ascii_alphanumeric()).collect();
    format!("k-{clean}")
}
