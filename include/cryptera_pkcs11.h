/*
 * Cryptera PKCS#11 module: vendor definitions and how to locate the module.
 *
 * The module is a standard PKCS#11 3.0 library. Load it with dlopen() and call C_GetFunctionList()
 * (2.40 function list) or C_GetInterface("PKCS 11", NULL, ...) (3.0 interface); use any PKCS#11
 * header for the standard types, e.g. <p11-kit/pkcs11.h> or OASIS' pkcs11.h.
 *
 * Where the module is:
 *   - installed system-wide: /usr/lib/x86_64-linux-gnu/pkcs11/libcryptera_pkcs11.so
 *   - built from the workspace: target/release/libcryptera_pkcs11.so
 *
 * Configuration: none needed. Tokens live in $XDG_DATA_HOME/cryptera-pkcs11 (else
 * ~/.local/share/cryptera-pkcs11), one SQLite file per token, encrypted at rest. The environment
 * variable CRYPTERA_PKCS11_CONFIG may name a TOML file (see README.md) to move the store, fix slot
 * numbers and labels, and tune PIN rules.
 */
#ifndef CRYPTERA_PKCS11_H
#define CRYPTERA_PKCS11_H

/* File name of the module. */
#define CRYPTERA_PKCS11_MODULE_NAME "libcryptera_pkcs11.so"

/* Environment variable naming the TOML configuration file. */
#define CRYPTERA_PKCS11_CONFIG_ENV "CRYPTERA_PKCS11_CONFIG"

/* Manufacturer ID reported in CK_INFO, CK_SLOT_INFO and CK_TOKEN_INFO (blank padded). */
#define CRYPTERA_PKCS11_MANUFACTURER "Cryptera"

/*
 * Vendor-defined values. CKA_VENDOR_DEFINED is 0x80000000UL in every PKCS#11 header; the module
 * defines no vendor attributes, mechanisms or return values yet. Values the module will add are
 * reserved from this base.
 */
#define CRYPTERA_VENDOR_BASE 0x43525000UL /* 'C' 'R' 'P' */

/*
 * Policy callback (vendor function, exported by the module like the C_* functions; find it with
 * dlsym). The callback is asked before each signature, for every token of the process, with the audit
 * event as a NUL-terminated JSON object (see docs/audit-format.md). Returning CKR_OK (0) allows the
 * signature; any other value rejects it and the signing call returns CKR_FUNCTION_REJECTED. Passing
 * NULL removes the callback. It may be called before C_Initialize. The callback runs on the thread
 * that calls C_Sign or C_SignFinal and must not call back into the module.
 */
typedef unsigned long (*cryptera_policy_callback)(const char *event_json, void *context);
typedef unsigned long (*CK_C_CrypteraSetPolicyCallback)(cryptera_policy_callback callback, void *context);
#define CRYPTERA_SET_POLICY_CALLBACK_SYMBOL "C_CrypteraSetPolicyCallback"

#endif /* CRYPTERA_PKCS11_H */
