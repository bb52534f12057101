#!/usr/bin/env python3
"""Checks docs/token-vectors.json independently of the Rust code, with cbor2, cryptography (Ed25519) and base45
from PyPI, following docs/token-format.md: prefix, base45, the COSE_Sign1 tag and structure, the protected header,
the Ed25519 signature over the Sig_structure, the CWT claims, the validity at the vector's time, and that signing
again with the vector's seed gives the very same code (Ed25519 signatures are deterministic).

    python3 scripts/check_token_vectors.py [docs/token-vectors.json]
"""
import json
import os
import sys

import base45
import cbor2
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

PREFIX = "HCQ1:"
HCQ_CLAIM = -65537
COLOURS = {0: "green", 1: "yellow", 2: "orange", 3: "red"}


def judge(vector):
    """Returns ('valid', claims) or (error name, None)."""
    code = vector["code"]
    if not code.startswith(PREFIX):
        return "bad_prefix", None
    raw = base45.b45decode(code[len(PREFIX):])
    assert raw.hex() == vector["cbor"], "the code's bytes are the vector's CBOR"
    tag = cbor2.loads(raw)
    if not isinstance(tag, cbor2.CBORTag) or tag.tag != 18 or len(tag.value) != 4:
        return "bad_cbor", None
    protected_bytes, unprotected, payload, signature = tag.value
    protected = cbor2.loads(protected_bytes)
    if protected.get(1) != -8:  # EdDSA
        return "wrong_algorithm", None
    key = vector["key"]
    if protected.get(4) != key["kid"].encode():
        return "unknown_key_id", None
    seed = bytes.fromhex(key["seed"])
    public = Ed25519PrivateKey.from_private_bytes(seed).public_key()
    public_bytes = public.public_bytes_raw()
    assert public_bytes.hex() == key["public"], "the public key is the seed's"
    to_be_signed = cbor2.dumps(["Signature1", protected_bytes, b"", payload])
    try:
        Ed25519PublicKey.from_public_bytes(public_bytes).verify(signature, to_be_signed)
    except InvalidSignature:
        return "bad_signature", None
    claims = cbor2.loads(payload)
    hcq = claims[HCQ_CLAIM]
    decoded = {
        "iss": claims[1],
        "exp": claims[4],
        "iat": claims[6],
        "subject": hcq[1].hex(),
        "colour": COLOURS[hcq[2]],
        "status_version": hcq[3],
        "negative_test_at": hcq.get(4),
        "flags": hcq.get(5, 0),
        "status_at": hcq.get(6),
    }
    if decoded["iss"] != key["issuer"]:
        return "issuer_mismatch", None
    now = vector["judged_at"]
    if decoded["iat"] > now:
        return "not_yet_valid", None
    if decoded["exp"] <= now:
        return "expired", None
    # Deterministic signatures: signing the same Sig_structure again gives the same bytes.
    again = Ed25519PrivateKey.from_private_bytes(seed).sign(to_be_signed)
    assert again == signature, "signing again with the seed gives the same signature"
    return "valid", decoded


def main():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    path = sys.argv[1] if len(sys.argv) > 1 else os.path.join(root, "docs", "token-vectors.json")
    with open(path) as f:
        vectors = json.load(f)["vectors"]
    failures = 0
    for v in vectors:
        outcome, claims = judge(v)
        ok = outcome == v["expect"] and (claims is None or claims == v["claims"])
        failures += not ok
        print(f"{'ok  ' if ok else 'FAIL'} {v['name']}: {outcome} (expected {v['expect']})")
        if claims is not None and claims != v["claims"]:
            print(f"     decoded {claims}\n     vector  {v['claims']}")
    if len(vectors) < 5:
        print("fewer than 5 vectors")
        failures += 1
    print(f"{len(vectors) - failures} of {len(vectors)} vectors check out independently")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
