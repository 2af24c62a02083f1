//! plinth-policy's integration tests, in one binary: the `plinth check`
//! report formats, the shipped policy library and its unit tests, the
//! bytecode VM against the interpreter, and what each package sees as
//! `input` on an AdmissionReview. Fixtures live in `tests/data/`.

mod input_shape;
mod report;
mod shipped_library;
mod vm_equivalence;
