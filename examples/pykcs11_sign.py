#!/usr/bin/python3
"""Signs a message with a token key through PyKCS11 (Debian: python3-pykcs11) and verifies it on the
token: the Python counterpart of examples/sign.c.

    /usr/bin/python3 examples/pykcs11_sign.py target/release/libcryptera_pkcs11.so build 1234 release-ec

Arguments: module path, token label, user PIN, key label. EC keys sign with CKM_ECDSA_SHA256, RSA keys
with CKM_SHA256_RSA_PKCS. Prints the token's objects and the signature; exits non-zero on failure.
"""
import sys

import PyKCS11

MESSAGE = b"signed through PyKCS11"


def find_slot(lib, token_label):
    for slot in lib.getSlotList(tokenPresent=True):
        if lib.getTokenInfo(slot).label.strip() == token_label:
            return slot
    raise SystemExit(f"no token labelled {token_label!r}")


def find_key(session, key_class, key_label):
    found = session.findObjects([(PyKCS11.CKA_CLASS, key_class), (PyKCS11.CKA_LABEL, key_label)])
    if not found:
        raise SystemExit(f"no {PyKCS11.CKO[key_class]} labelled {key_label!r}")
    return found[0]


def main(module, token_label, pin, key_label):
    lib = PyKCS11.PyKCS11Lib()
    lib.load(module)
    session = lib.openSession(find_slot(lib, token_label))
    session.login(pin)
    try:
        for obj in session.findObjects():
            cls, label = session.getAttributeValue(obj, [PyKCS11.CKA_CLASS, PyKCS11.CKA_LABEL])
            print(f"{PyKCS11.CKO[cls]:<16} {label}")
        private = find_key(session, PyKCS11.CKO_PRIVATE_KEY, key_label)
        public = find_key(session, PyKCS11.CKO_PUBLIC_KEY, key_label)
        key_type = session.getAttributeValue(private, [PyKCS11.CKA_KEY_TYPE])[0]
        if key_type == PyKCS11.CKK_EC:
            mechanism = PyKCS11.Mechanism(PyKCS11.CKM_ECDSA_SHA256, None)
        elif key_type == PyKCS11.CKK_RSA:
            mechanism = PyKCS11.Mechanism(PyKCS11.CKM_SHA256_RSA_PKCS, None)
        else:
            raise SystemExit(f"this example signs with EC or RSA keys, not {PyKCS11.CKK[key_type]}")
        signature = bytes(session.sign(private, MESSAGE, mechanism))
        if not session.verify(public, MESSAGE, signature, mechanism):
            raise SystemExit("the token did not verify its own signature")
        if session.verify(public, b"another message", signature, mechanism):
            raise SystemExit("a signature verified over the wrong message")
        print(f"{key_label}: {len(signature)} byte signature, verified on the token: {signature.hex()}")
    finally:
        session.logout()
        session.closeSession()


if __name__ == "__main__":
    if len(sys.argv) != 5:
        raise SystemExit("usage: pykcs11_sign.py MODULE TOKEN-LABEL PIN KEY-LABEL")
    main(*sys.argv[1:])
