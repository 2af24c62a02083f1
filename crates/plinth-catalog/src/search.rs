//! Full-text search over the catalogue, on a tantivy index held in memory.
//!
//! Ranked with BM25 over name, title, tags, owner, description and spec
//! text (boosted in that order); every word must match (falling back to any
//! word when nothing matches all), and the last word also matches as a
//! prefix so results appear while a user is still typing. The index is a
//! projection: rebuilt at start and kept current by the change follower.

use parking_lot::{Mutex, RwLock};
use roaring::RoaringBitmap;
use tantivy::collector::{Collector, SegmentCollector, TopDocs};
use tantivy::columnar::Column;
use tantivy::merge_policy::LogMergePolicy;
use tantivy::query::{BooleanQuery, BoostQuery, FuzzyTermQuery, Occur, Query, TermQuery};
use tantivy::schema::{Field, IndexRecordOption, Schema, TextFieldIndexing, TextOptions, FAST, INDEXED};
use tantivy::tokenizer::TokenStream;
use tantivy::{DocId, Index, IndexReader, IndexWriter, ReloadPolicy, Score, SegmentReader, TantivyDocument, Term};

/// How deep ranked results go: an `offset` beyond this is refused by the
/// API, and no caller can make a search collect more than
/// [`MAX_SEARCH_WINDOW`] hits.
pub const MAX_SEARCH_DEPTH: usize = 10_000;
/// Most hits one search collects (`offset + limit`, whatever is asked).
pub const MAX_SEARCH_WINDOW: usize = 12_000;

/// Segments holding more live documents than this are not merged again.
/// A bulk ingest commits every 25,000 documents (two segments, one per
/// indexing thread); tantivy's default policy merges eight alike segments,
/// so without a bound a million entities end in merges of 100,000-document
/// segments into one of 800,000, which holds the old segments and the new
/// one in memory at once: the million's peak. With it, the index settles
/// in segments of about 100,000 documents, each query visits a few more,
/// and the largest merge holds an eighth of a million's index.
const MERGE_MAX_DOCS: usize = 50_000;
/// A segment too large to merge is merged again (its deleted documents
/// dropped) once it has fewer than [`MERGE_MAX_DOCS`] live documents and
/// more than this share deleted: updates leave at most about half of a
/// large segment as dead weight.
const MERGE_DELETED_SHARE: f32 = 0.4;

/// tantivy's log merge policy within [`MERGE_MAX_DOCS`] and
/// [`MERGE_DELETED_SHARE`].
fn merge_policy() -> LogMergePolicy {
    let mut merges = LogMergePolicy::default();
    merges.set_max_docs_before_merge(MERGE_MAX_DOCS);
    merges.set_del_docs_ratio_before_merge(MERGE_DELETED_SHARE);
    merges
}

/// The text of one entity, as the search index sees it.
#[derive(Debug, Default, Clone)]
pub struct SearchDoc {
    pub name: String,
    pub title: String,
    pub description: String,
    pub tags: String,
    pub owner: String,
    pub text: String,
}

struct Fields {
    id: Field,
    name: Field,
    title: Field,
    description: Field,
    tags: Field,
    owner: Field,
    text: Field,
}

pub struct SearchIndex {
    index: Index,
    /// Adds and deletes share the writer; a commit takes it alone.
    writer: RwLock<IndexWriter>,
    reader: IndexReader,
    fields: Fields,
    dirty: Mutex<bool>,
    /// Documents added or deleted since the last commit.
    pending: std::sync::atomic::AtomicUsize,
}

/// One ranked hit: the entity id and its score.
#[derive(Debug, Clone, Copy)]
pub struct Hit {
    pub id: u32,
    pub score: f32,
}

#[derive(Debug, thiserror::Error)]
#[error("search index error: {0}")]
pub struct SearchError(#[from] tantivy::TantivyError);

/// Picks one field of the schema.
type FieldOf = fn(&Fields) -> Field;

const BOOSTS: [(FieldOf, f32); 6] = [
    (|f| f.name, 6.0),
    (|f| f.title, 4.0),
    (|f| f.tags, 3.0),
    (|f| f.owner, 2.0),
    (|f| f.description, 1.5),
    (|f| f.text, 1.0),
];

impl SearchIndex {
    pub fn new() -> Result<Self, SearchError> {
        let mut builder = Schema::builder();
        // Ids are read from the fast column, never from stored documents.
        let id = builder.add_u64_field("id", INDEXED | FAST);
        // Term frequencies for BM25 but no positions: no query is a
        // phrase, and positions were a third of the index in memory.
        let words = TextOptions::default().set_indexing_options(
            TextFieldIndexing::default().set_tokenizer("default").set_index_option(IndexRecordOption::WithFreqs),
        );
        let name = builder.add_text_field("name", words.clone());
        let title = builder.add_text_field("title", words.clone());
        let description = builder.add_text_field("description", words.clone());
        let tags = builder.add_text_field("tags", words.clone());
        let owner = builder.add_text_field("owner", words.clone());
        let text = builder.add_text_field("text", words);
        let index = Index::create_in_ram(builder.build());
        // Two indexing threads match the 2-core target machine. Ingest
        // commits every few thousand entities, so 16 MiB per thread is
        // rarely filled; more would only raise the ingest's peak memory.
        let writer: IndexWriter = index.writer_with_num_threads(2, 32 * 1024 * 1024)?;
        writer.set_merge_policy(Box::new(merge_policy()));
        let reader = index.reader_builder().reload_policy(ReloadPolicy::Manual).try_into()?;
        Ok(SearchIndex {
            index,
            writer: RwLock::new(writer),
            reader,
            fields: Fields { id, name, title, description, tags, owner, text },
            dirty: Mutex::new(false),
            pending: std::sync::atomic::AtomicUsize::new(0),
        })
    }

    /// Adds the document of entity `id`, replacing an earlier one when
    /// `replace` (a delete per new document would make every commit scan
    /// the whole index).
    pub fn upsert(&self, id: u32, doc: &SearchDoc, replace: bool) -> Result<(), SearchError> {
        let f = &self.fields;
        let mut document = TantivyDocument::default();
        document.add_u64(f.id, id as u64);
        document.add_text(f.name, &doc.name);
        document.add_text(f.title, &doc.title);
        document.add_text(f.description, &doc.description);
        document.add_text(f.tags, &doc.tags);
        document.add_text(f.owner, &doc.owner);
        document.add_text(f.text, &doc.text);
        let writer = self.writer.read();
        if replace {
            writer.delete_term(Term::from_field_u64(f.id, id as u64));
        }
        writer.add_document(document)?;
        *self.dirty.lock() = true;
        self.pending.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Ok(())
    }

    pub fn delete(&self, id: u32) {
        let writer = self.writer.read();
        writer.delete_term(Term::from_field_u64(self.fields.id, id as u64));
        *self.dirty.lock() = true;
        self.pending.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }

    /// Makes pending changes searchable when at least `documents` are
    /// pending: a bulk ingest commits every that many, not every chunk
    /// (each commit makes a segment, and segments are merged again later).
    pub fn commit_every(&self, documents: usize) -> Result<(), SearchError> {
        if self.pending.load(std::sync::atomic::Ordering::Relaxed) >= documents {
            self.commit()?;
        }
        Ok(())
    }

    /// Bytes of the committed segments (the index lives in memory).
    pub fn footprint(&self) -> u64 {
        self.reader.searcher().space_usage().map_or(0, |usage| usage.total().get_bytes())
    }

    /// Makes pending changes searchable.
    pub fn commit(&self) -> Result<(), SearchError> {
        let mut dirty = self.dirty.lock();
        if !*dirty {
            return Ok(());
        }
        self.writer.write().commit()?;
        self.reader.reload()?;
        *dirty = false;
        self.pending.store(0, std::sync::atomic::Ordering::Relaxed);
        Ok(())
    }

    /// The ranked hits in `[offset, offset + limit)` and the ids of every
    /// hit (for facet counts and totals).
    pub fn search(&self, text: &str, offset: usize, limit: usize) -> Result<(Vec<Hit>, RoaringBitmap), SearchError> {
        let words = self.words(text);
        if words.is_empty() {
            return Ok((Vec::new(), RoaringBitmap::new()));
        }
        let searcher = self.reader.searcher();
        // The collector reserves `offset + limit` slots up front: bound both.
        let offset = offset.min(MAX_SEARCH_WINDOW);
        let limit = limit.clamp(1, MAX_SEARCH_WINDOW - offset.min(MAX_SEARCH_WINDOW - 1));
        let collector = (TopDocs::with_limit(limit).and_offset(offset), IdSet);
        let (mut top, mut all) = searcher.search(&self.query(&words, Occur::Must), &collector)?;
        if all.is_empty() && words.len() > 1 {
            (top, all) = searcher.search(&self.query(&words, Occur::Should), &collector)?;
        }
        let mut hits = Vec::with_capacity(top.len());
        for (score, address) in top {
            let column = searcher.segment_reader(address.segment_ord).fast_fields().u64("id")?;
            if let Some(id) = column.first(address.doc_id) {
                hits.push(Hit { id: id as u32, score });
            }
        }
        Ok((hits, all))
    }

    /// Entities whose names are close to `text` (typos allowed: one edit
    /// for short words, two for longer ones), best first. For "did you
    /// mean" suggestions when a name is not found.
    pub fn suggest(&self, text: &str, limit: usize) -> Result<Vec<Hit>, SearchError> {
        let words = self.words(text);
        let mut clauses: Vec<(Occur, Box<dyn Query>)> = Vec::new();
        for word in words.iter().filter(|w| w.len() >= 3) {
            let term = Term::from_field_text(self.fields.name, word);
            let distance = if word.len() <= 5 { 1 } else { 2 };
            clauses.push((Occur::Should, Box::new(TermQuery::new(term.clone(), IndexRecordOption::WithFreqs))));
            clauses.push((Occur::Should, Box::new(FuzzyTermQuery::new(term, distance, true))));
        }
        if clauses.is_empty() {
            return Ok(Vec::new());
        }
        let searcher = self.reader.searcher();
        let top =
            searcher.search(&BooleanQuery::new(clauses), &TopDocs::with_limit(limit.clamp(1, MAX_SEARCH_WINDOW)))?;
        let mut hits = Vec::with_capacity(top.len());
        for (score, address) in top {
            let column = searcher.segment_reader(address.segment_ord).fast_fields().u64("id")?;
            if let Some(id) = column.first(address.doc_id) {
                hits.push(Hit { id: id as u32, score });
            }
        }
        Ok(hits)
    }

    fn words(&self, text: &str) -> Vec<String> {
        let mut analyzer = match self.index.tokenizer_for_field(self.fields.name) {
            Ok(analyzer) => analyzer,
            Err(_) => return Vec::new(),
        };
        let mut stream = analyzer.token_stream(text);
        let mut words = Vec::new();
        while stream.advance() {
            words.push(stream.token().text.clone());
        }
        words.truncate(16);
        words
    }

    fn query(&self, words: &[String], occur: Occur) -> BooleanQuery {
        let f = &self.fields;
        let mut clauses: Vec<(Occur, Box<dyn Query>)> = Vec::new();
        for (i, word) in words.iter().enumerate() {
            let last = i + 1 == words.len();
            let mut alternatives: Vec<(Occur, Box<dyn Query>)> = Vec::new();
            for (field, boost) in BOOSTS {
                let term = Term::from_field_text(field(f), word);
                let exact = TermQuery::new(term.clone(), IndexRecordOption::WithFreqs);
                alternatives.push((Occur::Should, Box::new(BoostQuery::new(Box::new(exact), boost))));
                // Prefix matching only where it pays: the last word, in the
                // name and title, once it is long enough to be selective.
                if last && boost >= 4.0 && word.len() >= 3 {
                    let prefix = FuzzyTermQuery::new_prefix(term, 0, true);
                    alternatives.push((Occur::Should, Box::new(BoostQuery::new(Box::new(prefix), boost * 0.5))));
                }
            }
            clauses.push((occur, Box::new(BooleanQuery::new(alternatives))));
        }
        BooleanQuery::new(clauses)
    }
}

/// Collects the entity id of every matching document.
struct IdSet;

struct SegmentIds {
    column: Column<u64>,
    ids: RoaringBitmap,
}

impl Collector for IdSet {
    type Fruit = RoaringBitmap;
    type Child = SegmentIds;

    fn for_segment(&self, _ordinal: u32, segment: &SegmentReader) -> tantivy::Result<SegmentIds> {
        Ok(SegmentIds { column: segment.fast_fields().u64("id")?, ids: RoaringBitmap::new() })
    }

    fn requires_scoring(&self) -> bool {
        false
    }

    fn merge_fruits(&self, fruits: Vec<RoaringBitmap>) -> tantivy::Result<RoaringBitmap> {
        Ok(fruits.into_iter().fold(RoaringBitmap::new(), |acc, ids| acc | ids))
    }
}

impl SegmentCollector for SegmentIds {
    type Fruit = RoaringBitmap;

    fn collect(&mut self, doc: DocId, _score: Score) {
        if let Some(id) = self.column.first(doc) {
            self.ids.insert(id as u32);
        }
    }

    fn harvest(self) -> RoaringBitmap {
        self.ids
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(name: &str, description: &str) -> SearchDoc {
        SearchDoc { name: name.into(), description: description.into(), ..SearchDoc::default() }
    }

    #[test]
    fn ranks_name_matches_first_and_matches_prefixes() {
        let index = SearchIndex::new().unwrap();
        index.upsert(1, &doc("checkout-service", "takes payments"), false).unwrap();
        index.upsert(2, &doc("payments-gateway", "talks to the checkout"), false).unwrap();
        index.upsert(3, &doc("search", "finds things"), false).unwrap();
        index.commit().unwrap();
        let (hits, all) = index.search("checkout", 0, 10).unwrap();
        assert_eq!(hits.iter().map(|h| h.id).collect::<Vec<_>>(), [1, 2]);
        assert_eq!(all.len(), 2);
        let (hits, _) = index.search("paym", 0, 10).unwrap();
        assert_eq!(hits[0].id, 2);
        let (hits, _) = index.search("checkout payments", 0, 10).unwrap();
        assert_eq!(hits.len(), 2);
        index.delete(1);
        index.commit().unwrap();
        let (hits, _) = index.search("checkout", 0, 10).unwrap();
        assert_eq!(hits.iter().map(|h| h.id).collect::<Vec<_>>(), [2]);
        index.upsert(2, &doc("renamed", "nothing"), true).unwrap();
        index.commit().unwrap();
        assert!(index.search("checkout", 0, 10).unwrap().0.is_empty());
        assert!(index.search("   ", 0, 10).unwrap().0.is_empty());
        let suggestions = index.suggest("renamd", 5).unwrap();
        assert_eq!(suggestions.first().map(|h| h.id), Some(2), "a typo still finds the name");
    }

    #[test]
    fn merges_stop_at_segments_of_a_bulk_commits_size_until_half_is_deleted() {
        use tantivy::index::SegmentId;
        use tantivy::merge_policy::MergePolicy;
        let index = SearchIndex::new().unwrap().index;
        let segment = |docs: u32, deleted: u32| {
            let meta = index.new_segment_meta(SegmentId::generate_random(), docs);
            if deleted > 0 {
                meta.with_delete_meta(deleted, 1)
            } else {
                meta
            }
        };
        let policy = merge_policy();
        // A bulk ingest's commits (two segments of 12,500 per 25,000
        // documents) merge, eight at a time.
        let small: Vec<_> = (0..8).map(|_| segment(12_500, 0)).collect();
        assert_eq!(policy.compute_merge_candidates(&small).len(), 1);
        // Eight merged segments of 100,000 documents (a million's index)
        // are not merged into one.
        let large: Vec<_> = (0..8).map(|_| segment(100_000, 0)).collect();
        assert!(policy.compute_merge_candidates(&large).is_empty());
        // A large segment that updates have left mostly deleted is merged
        // alone, dropping its dead documents.
        let churned = [segment(100_000, 30_000), segment(100_000, 60_000)];
        let candidates = policy.compute_merge_candidates(&churned);
        assert_eq!(candidates.len(), 1);
        assert_eq!(candidates[0].0, vec![churned[1].id()]);
    }
}
