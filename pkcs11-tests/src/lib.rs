//! Integration tests of the built `libcryptera_pkcs11.so`: see `tests/` (one process per file) and the
//! helper program in `src/bin/` that tests run as a second process sharing a token.
