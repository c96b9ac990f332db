#!/usr/bin/env python3
"""Writes the seed corpora of the fuzz targets to fuzz/corpus/<target>/: small, valid inputs in each
target's input format (see the target's doc comment), with key material and certificates made by the
openssl command line. Run it again only to change the seeds; the corpora are committed.

    python3 fuzz/seeds.py
"""
import base64
import hashlib
import os
import re
import struct
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
CORPUS = os.path.join(HERE, "corpus")

# PKCS#11 constants (x86_64: CK_ULONG is 8 bytes, little-endian).
CKA = dict(CLASS=0x0, TOKEN=0x1, PRIVATE=0x2, LABEL=0x3, APPLICATION=0x10, VALUE=0x11, OBJECT_ID=0x12,
           CERTIFICATE_TYPE=0x80, ISSUER=0x81, SERIAL_NUMBER=0x82, KEY_TYPE=0x100, SUBJECT=0x101, ID=0x102,
           SENSITIVE=0x103, ENCRYPT=0x104, DECRYPT=0x105, WRAP=0x106, UNWRAP=0x107, SIGN=0x108,
           VERIFY=0x10A, DERIVE=0x10C, MODULUS=0x120, MODULUS_BITS=0x121, PUBLIC_EXPONENT=0x122,
           PRIVATE_EXPONENT=0x123, PRIME_1=0x124, PRIME_2=0x125, EXPONENT_1=0x126, EXPONENT_2=0x127,
           COEFFICIENT=0x128, VALUE_LEN=0x161, EXTRACTABLE=0x162, MODIFIABLE=0x170, COPYABLE=0x171,
           DESTROYABLE=0x172, EC_PARAMS=0x180, EC_POINT=0x181, ALLOWED_MECHANISMS=0x40000600,
           TRUSTED=0x86, CHECK_VALUE=0x90, START_DATE=0x110, END_DATE=0x111)
CKO = dict(DATA=0, CERTIFICATE=1, PUBLIC_KEY=2, PRIVATE_KEY=3, SECRET_KEY=4)
CKK = dict(RSA=0, EC=3, GENERIC_SECRET=0x10, AES=0x1F, EC_EDWARDS=0x40)
CKM = dict(SHA_1=0x220, SHA224=0x255, SHA256=0x250, SHA384=0x260, SHA512=0x270, RSA_PKCS=0x1,
           RSA_PKCS_OAEP=0x9, RSA_PKCS_PSS=0xD, SHA256_RSA_PKCS_PSS=0x43, SHA384_RSA_PKCS_PSS=0x44,
           SHA256_RSA_PKCS=0x40, ECDSA=0x1041, ECDSA_SHA256=0x1044, EDDSA=0x1057, AES_GCM=0x1087,
           AES_CBC_PAD=0x1085, AES_KEY_WRAP=0x2109, AES_KEY_WRAP_PAD=0x210A, ECDH1_DERIVE=0x1050)
CKG_MGF1 = dict(SHA1=1, SHA256=2, SHA384=3, SHA512=4, SHA224=5)
CKD_NULL = 1
P256_OID = bytes.fromhex("06082a8648ce3d030107")
P384_OID = bytes.fromhex("06052b81040022")
P521_OID = bytes.fromhex("06052b81040023")
ED25519_OID = bytes.fromhex("06032b6570")


def ulong(v):
    return struct.pack("<Q", v)


def yes():
    return b"\x01"


def no():
    return b"\x00"


def openssl(*args, data=None):
    return subprocess.run(["openssl", *args], input=data, capture_output=True, check=True).stdout


def hex_fields(text):
    """The colon-hex blocks of `openssl ... -text` output, by field name."""
    fields, name, acc = {}, None, []
    for line in text.decode().splitlines():
        m = re.match(r"^(\w[\w ]*?):\s*$", line)
        if m:
            if name:
                fields[name] = bytes.fromhex("".join(acc).replace(":", ""))
            name, acc = m.group(1), []
        elif name and re.match(r"^\s+[0-9a-f:]+$", line):
            acc.append(line.strip())
        else:
            if name:
                fields[name] = bytes.fromhex("".join(acc).replace(":", ""))
            name, acc = None, []
    if name:
        fields[name] = bytes.fromhex("".join(acc).replace(":", ""))
    return fields


def strip(b):
    return b.lstrip(b"\x00") or b"\x00"


class Material:
    """Keys and certificates made once by openssl."""

    def __init__(self, tmp):
        ec_key = os.path.join(tmp, "ec.pem")
        openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", ec_key)
        f = hex_fields(openssl("pkey", "-in", ec_key, "-text", "-noout"))
        self.ec_scalar, self.ec_point = f["priv"][-32:].rjust(32, b"\0"), f["pub"]
        ed_key = os.path.join(tmp, "ed.pem")
        openssl("genpkey", "-algorithm", "ED25519", "-out", ed_key)
        f = hex_fields(openssl("pkey", "-in", ed_key, "-text", "-noout"))
        self.ed_seed, self.ed_point = f["priv"], f["pub"]
        rsa_key = os.path.join(tmp, "rsa.pem")
        openssl("genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", rsa_key)
        f = hex_fields(openssl("pkey", "-in", rsa_key, "-text", "-noout"))
        self.rsa = {k: strip(f[k]) for k in
                    ["modulus", "privateExponent", "prime1", "prime2", "exponent1", "exponent2", "coefficient"]}
        self.rsa["publicExponent"] = b"\x01\x00\x01"
        self.rsa_pkcs8 = openssl("pkey", "-in", rsa_key, "-outform", "DER")
        self.rsa_pkcs1 = openssl("rsa", "-in", rsa_key, "-outform", "DER", "-traditional")
        self.rsa_pkcs1_public = openssl("rsa", "-in", rsa_key, "-RSAPublicKey_out", "-outform", "DER")
        self.certs = {}
        for name, key in [("ec", ec_key), ("ed", ed_key), ("rsa", rsa_key)]:
            self.certs[name] = openssl("req", "-x509", "-key", key, "-subj", f"/CN=fuzz {name}/O=Acme (development)",
                                       "-days", "30", "-outform", "DER")
        self.spki_ec = openssl("pkey", "-in", ec_key, "-pubout", "-outform", "DER")


# ---- abi_objects / abi_mechanisms: RawTemplate and Reader encodings ----

def kind(t):
    return b"\xff" + ulong(t)  # Reader::pick: 0xff then the raw value


def raw_attr(t, value, layout=0, extra=0):
    long_value = len(value) > 255
    mode = layout | (0x04 if long_value else 0)
    out = kind(t) + bytes([mode])
    out += struct.pack("<H", len(value)) if long_value else bytes([len(value)])
    out += value
    if layout == 1:
        out += bytes([extra])
    return out


def template(attrs):
    """attrs: list of (type, value) or (type, value, layout, extra)."""
    assert len(attrs) < 16
    return bytes([len(attrs)]) + b"".join(raw_attr(*a) for a in attrs)


def out_template(types, size=64):
    out = bytes([len(types)])
    for t in types:
        out += kind(t) + bytes([0x01]) + bytes([size])
    return out


def ec_point_der(point):
    return bytes([0x04, len(point)]) + point


def objects_seeds(m):
    s = {}
    data = [(CKA["CLASS"], ulong(CKO["DATA"])), (CKA["TOKEN"], no()), (CKA["LABEL"], b"seed"),
            (CKA["APPLICATION"], b"fuzz"), (CKA["VALUE"], b"hello")]
    tail = (b"\x02\x00" + out_template([CKA["LABEL"], CKA["VALUE"], CKA["CLASS"], CKA["PRIVATE"]])
            + b"\x01\x00" + template([(CKA["LABEL"], b"renamed")])
            + b"\x04" + template([(CKA["LABEL"], b"renamed")]) + b"\x04"
            + b"\x03\x00" + template([(CKA["LABEL"], b"copy")])
            + b"\x06\x00" + b"\x05\x00")
    s["data-object"] = b"\x00" + template(data) + tail
    s["token-data-object"] = b"\x00" + template(data[:1] + [(CKA["TOKEN"], yes())] + data[2:]) + tail
    s["bogus-lengths"] = b"\x00" + template([(CKA["CLASS"], ulong(CKO["DATA"]), 1, 9), (CKA["LABEL"], b"x", 2),
                                             (CKA["VALUE"], b"abc", 3), (CKA["ID"], b"\x01\x02", 1, 200)])
    s["null-array"] = b"\x00" + bytes([0xC3]) + raw_attr(CKA["CLASS"], ulong(0)) * 3
    aes = [(CKA["CLASS"], ulong(CKO["SECRET_KEY"])), (CKA["KEY_TYPE"], ulong(CKK["AES"])),
           (CKA["VALUE"], bytes(range(32))), (CKA["TOKEN"], no()), (CKA["ENCRYPT"], yes()),
           (CKA["SENSITIVE"], no()), (CKA["EXTRACTABLE"], yes()),
           (CKA["ALLOWED_MECHANISMS"], ulong(CKM["AES_GCM"]) + ulong(CKM["AES_CBC_PAD"]))]
    s["aes-key"] = (b"\x00" + template(aes) + b"\x02\x00" + out_template([CKA["VALUE"], CKA["CHECK_VALUE"], CKA["VALUE_LEN"]])
                    + b"\x01\x00" + template([(CKA["SENSITIVE"], yes())]) + b"\x02\x00" + out_template([CKA["VALUE"]]))
    ec_pub = [(CKA["CLASS"], ulong(CKO["PUBLIC_KEY"])), (CKA["KEY_TYPE"], ulong(CKK["EC"])),
              (CKA["EC_PARAMS"], P256_OID), (CKA["EC_POINT"], ec_point_der(m.ec_point)), (CKA["TOKEN"], no()),
              (CKA["LABEL"], b"ec"), (CKA["ID"], b"\x01")]
    s["ec-public"] = b"\x00" + template(ec_pub) + b"\x02\x00" + out_template([0x129, CKA["EC_POINT"], CKA["EC_PARAMS"]], 200)
    s["ec-public-raw-point"] = b"\x00" + template(ec_pub[:3] + [(CKA["EC_POINT"], m.ec_point)] + ec_pub[4:])
    s["ec-params-printable"] = b"\x00" + template(ec_pub[:2] + [(CKA["EC_PARAMS"], b"\x13\x0aprime256v1")] + ec_pub[3:])
    s["ec-private"] = b"\x00" + template([(CKA["CLASS"], ulong(CKO["PRIVATE_KEY"])), (CKA["KEY_TYPE"], ulong(CKK["EC"])),
                                          (CKA["EC_PARAMS"], P256_OID), (CKA["VALUE"], m.ec_scalar), (CKA["TOKEN"], no()),
                                          (CKA["SIGN"], yes()), (CKA["DERIVE"], yes())]) + b"\x02\x00" + out_template([CKA["VALUE"], CKA["EC_POINT"]])
    s["ed25519-public"] = b"\x00" + template([(CKA["CLASS"], ulong(CKO["PUBLIC_KEY"])), (CKA["KEY_TYPE"], ulong(CKK["EC_EDWARDS"])),
                                              (CKA["EC_PARAMS"], ED25519_OID), (CKA["EC_POINT"], ec_point_der(m.ed_point)),
                                              (CKA["TOKEN"], no())])
    s["ed25519-private"] = b"\x00" + template([(CKA["CLASS"], ulong(CKO["PRIVATE_KEY"])), (CKA["KEY_TYPE"], ulong(CKK["EC_EDWARDS"])),
                                               (CKA["EC_PARAMS"], b"\x13\x0cedwards25519"), (CKA["VALUE"], m.ed_seed),
                                               (CKA["TOKEN"], no())])
    r = m.rsa
    s["rsa-public"] = b"\x00" + template([(CKA["CLASS"], ulong(CKO["PUBLIC_KEY"])), (CKA["KEY_TYPE"], ulong(CKK["RSA"])),
                                          (CKA["MODULUS"], r["modulus"]), (CKA["PUBLIC_EXPONENT"], r["publicExponent"]),
                                          (CKA["TOKEN"], no()), (CKA["VERIFY"], yes())]) + b"\x02\x00" + out_template([0x129, CKA["MODULUS_BITS"]], 255)
    s["rsa-private"] = b"\x00" + template([(CKA["CLASS"], ulong(CKO["PRIVATE_KEY"])), (CKA["KEY_TYPE"], ulong(CKK["RSA"])),
                                           (CKA["MODULUS"], r["modulus"]), (CKA["PUBLIC_EXPONENT"], r["publicExponent"]),
                                           (CKA["PRIVATE_EXPONENT"], r["privateExponent"]), (CKA["PRIME_1"], r["prime1"]),
                                           (CKA["PRIME_2"], r["prime2"]), (CKA["EXPONENT_1"], r["exponent1"]),
                                           (CKA["EXPONENT_2"], r["exponent2"]), (CKA["COEFFICIENT"], r["coefficient"]),
                                           (CKA["TOKEN"], no()), (CKA["SIGN"], yes())])
    for name, der in m.certs.items():
        s[f"certificate-{name}"] = b"\x00" + template([(CKA["CLASS"], ulong(CKO["CERTIFICATE"])),
                                                       (CKA["CERTIFICATE_TYPE"], ulong(0)), (CKA["VALUE"], der),
                                                       (CKA["TOKEN"], no()), (CKA["LABEL"], b"cert")]) \
            + b"\x02\x00" + out_template([CKA["SUBJECT"], CKA["ISSUER"], CKA["SERIAL_NUMBER"], 0x129], 255)
    s["generic-secret"] = b"\x00" + template([(CKA["CLASS"], ulong(CKO["SECRET_KEY"])), (CKA["KEY_TYPE"], ulong(CKK["GENERIC_SECRET"])),
                                              (CKA["VALUE"], b"k" * 20), (CKA["START_DATE"], b"20240101"), (CKA["TOKEN"], no())])
    return s


def mech_kind(t):
    return kind(t)


def inner(data, mode=0):
    """abi_mechanisms `inner`: mode 0 = a buffer of `data`."""
    assert len(data) <= 255
    return bytes([mode, len(data)]) + data


def bytes8(data):
    assert len(data) <= 255
    return bytes([len(data)]) + data


def bytes16(data):
    return struct.pack("<H", len(data)) + data


OUT = struct.pack("<H", 600)  # output space: a 600-byte buffer
QUERY = struct.pack("<H", 0x8000)  # output space: a length query


def mechanisms_seeds(m):
    s = {}
    digest = hashlib.sha256(b"fuzz").digest()

    def pss(hash_, mgf, salt):
        return b"\x00" + b"\x00" + kind(hash_) + kind(mgf) + bytes([salt])  # layout 0, selector 0, fields

    s["sign-pss-sha256"] = b"\x00\x00" + mech_kind(CKM["SHA256_RSA_PKCS_PSS"]) + pss(CKM["SHA256"], CKG_MGF1["SHA256"], 32) + bytes8(b"data") + OUT
    s["sign-pss-raw"] = b"\x00\x00" + mech_kind(CKM["RSA_PKCS_PSS"]) + pss(CKM["SHA256"], CKG_MGF1["SHA256"], 20) + bytes8(digest) + QUERY
    s["sign-pss-unaligned"] = b"\x00\x00" + mech_kind(CKM["SHA384_RSA_PKCS_PSS"]) + b"\x04\x00" + kind(CKM["SHA384"]) + kind(CKG_MGF1["SHA384"]) + bytes([48]) + bytes8(b"x") + OUT
    s["verify-pss"] = b"\x01\x00" + mech_kind(CKM["SHA256_RSA_PKCS_PSS"]) + pss(CKM["SHA256"], CKG_MGF1["SHA256"], 32) + bytes8(b"data") + bytes16(bytes(256))

    def oaep(label):
        return b"\x00" + b"\x00" + kind(CKM["SHA256"]) + kind(CKG_MGF1["SHA256"]) + b"\x00" + inner(label)

    s["encrypt-oaep"] = b"\x02\x00" + mech_kind(CKM["RSA_PKCS_OAEP"]) + oaep(b"label") + bytes16(b"secret") + OUT
    s["decrypt-oaep"] = b"\x03\x00" + mech_kind(CKM["RSA_PKCS_OAEP"]) + oaep(b"") + bytes16(bytes(range(256))) + OUT
    s["wrap-oaep"] = b"\x05\x00" + mech_kind(CKM["RSA_PKCS_OAEP"]) + oaep(b"") + OUT

    def gcm(iv, aad, layout=0, selector=0):
        return bytes([layout, selector]) + inner(iv) + inner(aad) + b"\x00"  # tag bits: 128

    s["encrypt-gcm"] = b"\x02\x01" + mech_kind(CKM["AES_GCM"]) + gcm(bytes(12), b"aad") + bytes16(b"plaintext") + OUT
    s["decrypt-gcm"] = b"\x03\x01" + mech_kind(CKM["AES_GCM"]) + gcm(bytes(12), b"") + bytes16(bytes(32)) + OUT
    s["encrypt-gcm-240"] = b"\x02\x01" + mech_kind(CKM["AES_GCM"]) + gcm(bytes(12), b"aad", 0, 0x83) + bytes16(b"plaintext") + OUT
    s["encrypt-cbc-pad"] = b"\x02\x01" + mech_kind(CKM["AES_CBC_PAD"]) + b"\x00\x86" + bytes8(bytes(16)) + bytes16(b"plaintext") + OUT
    s["wrap-aes-key-wrap"] = b"\x05\x01" + mech_kind(CKM["AES_KEY_WRAP"]) + b"\x03" + OUT
    s["unwrap-aes-key-wrap-pad"] = (b"\x06\x01" + mech_kind(CKM["AES_KEY_WRAP_PAD"]) + b"\x03" + bytes16(bytes(24))
                                    + template([(CKA["CLASS"], ulong(CKO["SECRET_KEY"])), (CKA["KEY_TYPE"], ulong(CKK["AES"])),
                                                (CKA["TOKEN"], no())]))
    derive_template = template([(CKA["CLASS"], ulong(CKO["SECRET_KEY"])), (CKA["KEY_TYPE"], ulong(CKK["GENERIC_SECRET"])),
                                (CKA["VALUE_LEN"], ulong(32)), (CKA["TOKEN"], no()), (CKA["SENSITIVE"], no()),
                                (CKA["EXTRACTABLE"], yes())])
    ecdh = b"\x00\x00" + kind(CKD_NULL) + b"\x02\x00"  # layout 0, selector 0, kdf, shared data NULL/0
    s["derive-ecdh-der-point"] = b"\x04\x00" + mech_kind(CKM["ECDH1_DERIVE"]) + ecdh + b"\x00" + derive_template
    s["derive-ecdh-raw-point"] = b"\x04\x00" + mech_kind(CKM["ECDH1_DERIVE"]) + ecdh + b"\x01" + derive_template
    s["derive-ecdh-fuzzed-point"] = b"\x04\x00" + mech_kind(CKM["ECDH1_DERIVE"]) + ecdh + b"\x02" + inner(b"\x04" + m.ec_point[1:]) + derive_template
    s["sign-eddsa-params"] = b"\x00\x02" + mech_kind(CKM["EDDSA"]) + b"\x00\x00" + b"\x00" + b"\x02\x00" + bytes8(b"message") + OUT
    s["sign-eddsa-none"] = b"\x00\x02" + mech_kind(CKM["EDDSA"]) + b"\x03" + bytes8(b"message") + OUT
    s["sign-ecdsa"] = b"\x00\x01" + mech_kind(CKM["ECDSA"]) + b"\x03" + bytes8(digest) + OUT
    s["digest"] = b"\x07" + mech_kind(CKM["SHA256"]) + b"\x03" + bytes8(b"abc") + OUT
    return s


def der_seeds(m):
    s = {}
    for name, oid in [("p256", P256_OID), ("p384", P384_OID), ("p521", P521_OID), ("ed25519", ED25519_OID)]:
        s[f"ec-params-{name}"] = b"\x00" + oid
    s["ec-params-printable"] = b"\x00" + b"\x13\x0aprime256v1"
    s["ec-point-der"] = b"\x01" + ec_point_der(m.ec_point)
    s["ec-point-raw"] = b"\x01" + m.ec_point
    for name, der in m.certs.items():
        s[f"certificate-{name}"] = b"\x02" + der
    s["pkcs8-rsa"] = b"\x03" + m.rsa_pkcs8
    s["digest-info-sha256"] = b"\x04" + bytes.fromhex("3031300d060960864801650304020105000420") + hashlib.sha256(b"x").digest()
    r = m.rsa
    comps = [r["modulus"], r["publicExponent"], r["privateExponent"], r["prime1"], r["prime2"],
             r["exponent1"], r["exponent2"], r["coefficient"]]
    s["rsa-components"] = b"\x05" + b"".join(struct.pack("<H", len(c)) for c in comps[:-1]) + b"".join(comps)
    s["ec-scalar-p256"] = b"\x06\x00" + m.ec_scalar
    s["ed25519-seed"] = b"\x06\x00" + m.ed_seed
    parts = [r["modulus"], r["publicExponent"], hashlib.sha256(b"m").digest()]
    s["public-keys"] = b"\x07" + b"".join(struct.pack("<H", len(p)) for p in parts) + b"".join(parts) + bytes(256)
    s["public-key-ec"] = b"\x07" + struct.pack("<HHH", 3, 65, 32) + b"\x00\x00\x00" + m.ec_point + digest_of(b"m") + bytes(64)
    s["engine-public"] = b"\x08" + struct.pack("<HH", len(m.rsa_pkcs1_public), 256) + m.rsa_pkcs1_public + bytes(256) + hashlib.sha256(b"d").digest()
    s["engine-private"] = b"\x09" + struct.pack("<H", len(m.rsa_pkcs1)) + m.rsa_pkcs1 + b"input"
    s["spki-in-certificate"] = b"\x02" + m.certs["ec"]
    return s


def digest_of(b):
    return hashlib.sha256(b).digest()


# ---- store_records: the codec (u64 LE type, u32 LE length, value) ----

def record(attrs):
    out = b"\x01"
    for t, v in sorted(attrs):
        out += struct.pack("<QI", t, len(v)) + v
    return out


def store_seeds(m):
    s = {}
    data = [(CKA["CLASS"], ulong(CKO["DATA"])), (CKA["TOKEN"], yes()), (CKA["PRIVATE"], no()),
            (CKA["LABEL"], b"seed"), (CKA["VALUE"], b"hello"), (CKA["MODIFIABLE"], yes()), (CKA["COPYABLE"], yes())]
    s["codec-data-object"] = b"\x00" + record(data)

    def row(uid, flags, public, rest):
        return b"\x01" + struct.pack("<Q", uid) + bytes([flags]) + bytes16(public) + rest

    s["row-data-object"] = row(7, 0, record(data), b"")
    common = [(CKA["TOKEN"], yes()), (CKA["PRIVATE"], yes()), (CKA["LABEL"], b"key"), (CKA["ID"], b"\x01"),
              (CKA["SENSITIVE"], yes()), (CKA["EXTRACTABLE"], no()), (CKA["SIGN"], yes()), (CKA["MODIFIABLE"], yes()),
              (CKA["COPYABLE"], yes()), (CKA["DESTROYABLE"], yes())]
    ec_public = [(CKA["CLASS"], ulong(CKO["PRIVATE_KEY"])), (CKA["KEY_TYPE"], ulong(CKK["EC"])),
                 (CKA["EC_PARAMS"], P256_OID), (CKA["EC_POINT"], ec_point_der(m.ec_point))] + common
    s["row-ec-private-sealed"] = row(8, 0b101, record(ec_public), record([(CKA["VALUE"], m.ec_scalar)]))
    ed_public = [(CKA["CLASS"], ulong(CKO["PRIVATE_KEY"])), (CKA["KEY_TYPE"], ulong(CKK["EC_EDWARDS"])),
                 (CKA["EC_PARAMS"], ED25519_OID), (CKA["EC_POINT"], ec_point_der(m.ed_point))] + common
    s["row-ed25519-private-sealed"] = row(9, 0b101, record(ed_public), record([(CKA["VALUE"], m.ed_seed)]))
    r = m.rsa
    rsa_public = [(CKA["CLASS"], ulong(CKO["PRIVATE_KEY"])), (CKA["KEY_TYPE"], ulong(CKK["RSA"])),
                  (CKA["MODULUS"], r["modulus"]), (CKA["PUBLIC_EXPONENT"], r["publicExponent"])] + common
    rsa_secret = [(CKA["PRIVATE_EXPONENT"], r["privateExponent"]), (CKA["PRIME_1"], r["prime1"]),
                  (CKA["PRIME_2"], r["prime2"]), (CKA["EXPONENT_1"], r["exponent1"]),
                  (CKA["EXPONENT_2"], r["exponent2"]), (CKA["COEFFICIENT"], r["coefficient"])]
    s["row-rsa-private-sealed"] = row(10, 0b101, record(rsa_public), record(rsa_secret))
    aes_public = [(CKA["CLASS"], ulong(CKO["SECRET_KEY"])), (CKA["KEY_TYPE"], ulong(CKK["AES"])),
                  (CKA["VALUE_LEN"], ulong(32)), (CKA["ALLOWED_MECHANISMS"], ulong(CKM["AES_GCM"]))] + common
    s["row-aes-sealed"] = row(11, 0b101, record(aes_public), record([(CKA["VALUE"], bytes(32))]))
    s["row-raw-sealed"] = row(12, 0b011, record(ec_public), b"\x01" + bytes(12) + bytes(32))
    s["row-logged-out"] = row(13, 0b10101, record(ec_public), record([(CKA["VALUE"], m.ec_scalar)]))
    s["pin-record"] = b"\x02" + b"\x01" + struct.pack("<III", 8, 1, 1) + bytes(16) + bytes(12) + bytes(48)
    s["sealed-blob"] = b"\x03" + b"\x01" + bytes(12) + bytes(40)
    # Regressions: PIN records whose Argon2id cost hung a login (passes) or panicked argon2 (lanes).
    s["regress-pin-record-passes"] = b"\x02" + b"\x01" + struct.pack("<III", 8, 0xFFFFFFFF, 1) + bytes(76)
    s["regress-pin-record-lanes"] = b"\x02" + b"\x01" + struct.pack("<III", 8, 1, 0xFFFFFFFF) + bytes(76)
    return s


# ---- service_requests ----

def b64(b):
    return base64.b64encode(b).decode()


def service_seeds(m):
    import json
    s = {}

    def route(selector, extra, body, headers=0):
        payload = body if isinstance(body, bytes) else json.dumps(body).encode()
        return b"\x00" + bytes([selector, headers]) + extra + payload

    digest = hashlib.sha256(b"artifact").digest()
    s["sign-ecdsa"] = route(0, b"\x00", {"mechanism": "ecdsa_sha256", "digest": b64(digest), "idempotency_key": "k-1",
                                         "artifact": {"name": "a.bin", "hash": "sha256:00", "description": "d"}})
    s["sign-ed25519-data"] = route(0, b"\x01", {"mechanism": "ed25519", "data": b64(b"message"), "idempotency_key": "k-2"})
    s["sign-rsa-pss"] = route(0, b"\x02", {"mechanism": "rsa_pss_sha256", "digest": b64(digest), "idempotency_key": "k-3"})
    s["sign-idempotency-header"] = route(0, b"\x00" + bytes8(b"hdr-1"), {"mechanism": "ecdsa_sha256", "digest": b64(digest), "idempotency_key": "k-4"}, headers=8)
    s["policy"] = route(1, b"", {"allowed_mechanisms": ["ecdsa_sha256"], "approvals_required": 1, "approvers": ["alice"],
                                 "request_expiry_seconds": 3600, "approval_window": {"hours": 8, "max_signatures": 3},
                                 "rate_limit_per_minute": 10})
    s["certificates"] = route(2, b"", {"certificates": [b64(m.certs["ec"]), b64(m.certs["rsa"])]})
    s["create-key"] = route(3, b"", {"label": "k", "algorithm": "ecdsa_p256", "policy": {}})
    s["create-token"] = route(4, b"", {"name": "t", "operations": ["sign", "read"], "keys": {"label_patterns": ["k*"]},
                                       "expires_in_seconds": 60})
    s["create-user"] = route(5, b"", {"username": "bob", "password": "correct horse battery staple", "roles": ["signer"]})
    s["login"] = route(6, b"", {"organisation": "fuzz", "username": "alice", "password": "wrong password here",
                                "environment": "development"}, headers=1 | 2)
    s["totp-confirm"] = route(7, b"", {"code": "123456"})
    s["deny"] = route(8, bytes8(b"req_0123"), {"reason": "no"})
    s["approve"] = route(9, bytes8(b"req_0123"), b"")
    s["lock"] = route(10, b"", b"")
    s["delete"] = route(11, b"", b"")
    s["restore"] = route(12, b"", b"")
    s["audit-query"] = route(13, bytes8(b"limit=5&after=0"), b"")
    s["requests-query"] = route(14, bytes8(b"status=pending"), b"")
    s["get-key"] = route(15, b"\x00", b"")
    s["raw-whoami"] = b"\x00" + bytes([200, 0]) + bytes8(b"GET") + bytes8(b"/v1/whoami")
    s["raw-bad-auth"] = b"\x00" + bytes([200, 1]) + bytes8(b"GET") + bytes8(b"/v1/keys") + bytes8(b"Bearer ak_x.y")
    s["round-trip-sign"] = b"\x80" + json.dumps({"mechanism": "ecdsa_sha256", "digest": b64(digest), "idempotency_key": "k"}).encode()
    s["round-trip-policy"] = b"\x80" + json.dumps({"allowed_mechanisms": ["ed25519"], "approvers": ["a"]}).encode()
    s["round-trip-token"] = b"\x80" + json.dumps({"name": "t", "operations": ["admin"], "expires_in_seconds": 1}).encode()
    return s


def main():
    with tempfile.TemporaryDirectory() as tmp:
        m = Material(tmp)
        targets = {
            "abi_objects": objects_seeds(m),
            "abi_mechanisms": mechanisms_seeds(m),
            "der": der_seeds(m),
            "store_records": store_seeds(m),
            "service_requests": service_seeds(m),
        }
    for target, seeds in targets.items():
        directory = os.path.join(CORPUS, target)
        os.makedirs(directory, exist_ok=True)
        for name, data in seeds.items():
            with open(os.path.join(directory, "seed-" + name), "wb") as f:
                f.write(data)
        print(f"{target}: {len(seeds)} seeds", file=sys.stderr)


if __name__ == "__main__":
    main()
