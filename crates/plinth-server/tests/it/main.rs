//! The integration tests of plinth-server, in one binary: each module is a
//! suite, and every suite starts servers through `plinth_testkit`.

mod parameters;
mod security;
