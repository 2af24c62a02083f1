//! Where user input meets the operating system. Three rules of DESIGN.md §7
//! live here and nowhere else:
//!
//! - [`path`]: every path from user input stays inside its root
//!   (canonicalised; `..`, absolute paths and symbolic links that leave the
//!   root are refused);
//! - [`git`]: the `git` client is run with user input only as option values
//!   (`--name=value`) or operands after `--`, with validated refs and URLs,
//!   an allowlist of transports and no prompts;
//! - [`outbound`]: every outbound HTTP request passes one allowlist, checked
//!   on the addresses a name resolves to, so link-local and metadata
//!   addresses are refused by default.

pub mod git;
pub mod outbound;
pub mod path;

pub use git::{GitCommand, GitError, GitRef, GitUrl, Transport};
pub use outbound::{OutboundError, OutboundPolicy};
pub use path::{PathError, Root};
