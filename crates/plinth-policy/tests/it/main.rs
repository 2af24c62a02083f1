//! plinth-policy's integration tests, in one binary: the `plinth check`
//! report formats, the shipped policy library and its unit tests, and the
//! bytecode VM against the interpreter. Fixtures live in `tests/data/`.

mod report;
mod shipped_library;
mod vm_equivalence;
