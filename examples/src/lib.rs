//! Runnable examples of optedit (see `examples/`); this library is empty.
