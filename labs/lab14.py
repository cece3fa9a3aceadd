"""Lab 14 - practical cryptography in Python, and loading pickles safely.

What the lab shows:

  1. secrets versus random: random's Mersenne Twister is predictable - after
     624 observed 32-bit outputs the lab predicts the next one exactly - so
     tokens, passwords and keys come from secrets (the OS's CSPRNG);
  2. HMAC-SHA256 (checked against the RFC 4231 test vector) and why tags are
     compared with hmac.compare_digest, not ==;
  3. hashlib: SHA3-256 and BLAKE2b known answers, keyed BLAKE2b as a fast
     MAC with a personalisation string, and scrypt for passwords;
  4. Fernet (cryptography): authenticated encryption - the token's layout
     (version, timestamp, IV, ciphertext, HMAC), round trip, tamper
     detection, time-to-live, and key rotation with MultiFernet;
  5. RSA-PSS signatures: randomised (two signatures of the same message
     differ, both verify) and any change to the message fails verification;
  6. X25519 key agreement plus HKDF: both sides derive the same 32-byte key
     from exchanged public keys and use it with Fernet; an eavesdropper's
     key derives something else;
  7. pickle: why unpickling untrusted data runs code (a payload that calls
     os.system, shown with pickletools without ever loading it), and a
     restricted Unpickler whose find_class allows a short list of globals,
     so benign data loads and every malicious payload is refused.

Needs cryptography (labs/requirements.txt; `make deps` installs it into
.venv/).  Run it from anywhere:

    .venv/shared/bin/python labs/lab14.py

The last line is "VERIFY lab14: ... ok" (exit status 0) or a line with FAIL
and the reason (non-zero exit status).
"""

import base64
import collections
import datetime
import decimal
import hashlib
import hmac
import io
import math
import os
import pickle
import pickletools
import random
import secrets
import struct
import sys
import tempfile
import time

try:
    import cryptography
    from cryptography.exceptions import InvalidSignature
    from cryptography.fernet import Fernet, InvalidToken, MultiFernet
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import padding, rsa, x25519
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF
except ImportError:
    print("FAIL lab14: the cryptography package is not installed for %s "
          "(run `make deps`, then use .venv/<shape>/bin/python)" % sys.executable)
    sys.exit(1)

FAILURES = []


def heading(title):
    print()
    print("== " + title + " " + "=" * max(0, 66 - len(title)))


def check(condition, what):
    """Record a failed check; the VERIFY line at the end reports them."""
    if not condition:
        FAILURES.append(what)
        print("  !! check failed: " + what)
    return condition


# --------------------------------------------------------------------------
# 1. secrets versus random
# --------------------------------------------------------------------------

def untemper(y):
    """Invert the Mersenne Twister's output tempering: output -> state word."""
    y ^= y >> 18
    y ^= (y << 15) & 0xEFC60000
    # y ^= (y << 7) & 0x9D2C5680, undone 7 bits at a time
    result = y
    for _ in range(4):
        result = y ^ ((result << 7) & 0x9D2C5680)
    y = result & 0xFFFFFFFF
    # y ^= y >> 11, undone 11 bits at a time
    result = y
    for _ in range(2):
        result = y ^ (result >> 11)
    return result & 0xFFFFFFFF


def section_random():
    heading("1. secrets, not random, for anything an attacker may guess")
    victim = random.Random(secrets.randbits(64))  # even a secret seed does not help
    observed = [victim.getrandbits(32) for _ in range(624)]
    state = tuple(untemper(y) for y in observed) + (624,)
    clone = random.Random()
    clone.setstate((3, state, None))  # version 3 state: 624 words + index
    predicted = [clone.getrandbits(32) for _ in range(5)]
    actual = [victim.getrandbits(32) for _ in range(5)]
    print("  observed 624 outputs of random.getrandbits(32), rebuilt the state;")
    print("  predicted next 5: %s" % ["%08x" % x for x in predicted])
    print("  actual next 5   : %s" % ["%08x" % x for x in actual])
    check(predicted == actual, "the Mersenne Twister is predicted from 624 outputs")

    print("  secrets.token_hex(16)     = %s" % secrets.token_hex(16))
    print("  secrets.token_urlsafe(16) = %s" % secrets.token_urlsafe(16))
    alphabet = "abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"
    password = "".join(secrets.choice(alphabet) for _ in range(16))
    print("  a 16-character password   = %s  (secrets.choice; ~%.0f bits)"
          % (password, 16 * math.log2(len(alphabet))))
    check(len(secrets.token_bytes(32)) == 32 and len(secrets.token_hex(16)) == 32,
          "secrets returns the requested sizes")


# --------------------------------------------------------------------------
# 2. HMAC and compare_digest
# --------------------------------------------------------------------------

def section_hmac():
    heading("2. HMAC-SHA256 and hmac.compare_digest")
    # RFC 4231, test case 2
    tag = hmac.new(b"Jefe", b"what do ya want for nothing?", hashlib.sha256).hexdigest()
    print("  RFC 4231 case 2: %s" % tag)
    check(tag == "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843",
          "HMAC-SHA256 matches the RFC 4231 vector")

    key = secrets.token_bytes(32)
    message = b"amount=100&to=bob"
    sig = hmac.new(key, message, hashlib.sha256).digest()

    def verify(msg, tag):
        expected = hmac.new(key, msg, hashlib.sha256).digest()
        # == stops at the first differing byte, so its time tells an attacker
        # how many leading bytes of a forged tag were right; compare_digest
        # takes the same time whatever the inputs.
        return hmac.compare_digest(expected, tag)

    good = verify(message, sig)
    forged = verify(b"amount=900&to=eve", sig)
    print("  verify(original message) = %s; verify(amount=900&to=eve) = %s" % (good, forged))
    check(good and not forged, "HMAC verifies the original and rejects a changed message")


# --------------------------------------------------------------------------
# 3. hashlib
# --------------------------------------------------------------------------

def section_hashlib():
    heading("3. hashlib: SHA3-256, keyed BLAKE2b, scrypt")
    vectors = [
        ("sha3_256('')", hashlib.sha3_256(b"").hexdigest(),
         "a7ffc6f8bf1ed76651c14756a061d662f580ff4de43b49fa82d80a4b80f8434a"),
        ("sha3_256('abc')", hashlib.sha3_256(b"abc").hexdigest(),
         "3a985da74fe225b2045c172d6bd390bd855f086e3e9d525b46bfe24511431532"),
        ("blake2b('abc')", hashlib.blake2b(b"abc").hexdigest(),
         "ba80a53f981c4d0d6a2797b69f12f6e94c212f14685ac4b74b12bb6fdbffa2d1"
         "7d87c5392aab792dc252d5de4533cc9518d38aa8dbf1925ab92386edd4009923"),
    ]
    for name, got, want in vectors:
        print("  %-16s %s... %s" % (name, got[:32], "matches" if got == want else "WRONG"))
        check(got == want, "%s matches its published test vector" % name)

    key = secrets.token_bytes(32)
    msg = b"GET /api/orders?page=2"

    def mac(k, m, person=b"lab14-api-v1"):
        return hashlib.blake2b(m, key=k, digest_size=32, person=person).hexdigest()

    t1, t2 = mac(key, msg), mac(secrets.token_bytes(32), msg)
    t3 = mac(key, msg, person=b"lab14-web-v1")
    print("  keyed blake2b(msg)                 = %s..." % t1[:32])
    print("  same msg, another key              = %s..." % t2[:32])
    print("  same msg and key, other person=    = %s..." % t3[:32])
    check(len({t1, t2, t3}) == 3 and hmac.compare_digest(t1, mac(key, msg)),
          "keyed BLAKE2b depends on key and personalisation, and is reproducible")

    salt1, salt2 = secrets.token_bytes(16), secrets.token_bytes(16)
    t0 = time.perf_counter()
    h1 = hashlib.scrypt(b"correct horse", salt=salt1, n=2 ** 14, r=8, p=1, dklen=32)
    ms = (time.perf_counter() - t0) * 1e3
    h1b = hashlib.scrypt(b"correct horse", salt=salt1, n=2 ** 14, r=8, p=1, dklen=32)
    h2 = hashlib.scrypt(b"correct horse", salt=salt2, n=2 ** 14, r=8, p=1, dklen=32)
    print("  scrypt(n=2**14, r=8): %.0f ms and 16 MiB per guess; same salt -> same hash: %s;"
          % (ms, h1 == h1b))
    print("  another salt -> another hash: %s (so equal passwords do not show)" % (h1 != h2))
    check(h1 == h1b and h1 != h2, "scrypt is deterministic per salt and differs across salts")


# --------------------------------------------------------------------------
# 4. Fernet
# --------------------------------------------------------------------------

def section_fernet():
    heading("4. Fernet: authenticated symmetric encryption")
    key = Fernet.generate_key()
    f = Fernet(key)
    plaintext = b"card=4111-1111; exp=12/29"
    token = f.encrypt(plaintext)
    raw = base64.urlsafe_b64decode(token)
    version, ts = raw[0], struct.unpack(">Q", raw[1:9])[0]
    print("  key (urlsafe base64 of 32 bytes: 16 signing + 16 AES) = %s" % key.decode())
    print("  token = %s..." % token[:48].decode())
    print("  token layout: version 0x%02x | timestamp %d | IV %s | ciphertext %d bytes | HMAC %s..."
          % (version, ts, raw[9:25].hex()[:8] + "...", len(raw) - 57, raw[-32:].hex()[:8]))
    back = f.decrypt(token)
    check(version == 0x80 and back == plaintext and abs(ts - time.time()) < 60,
          "Fernet round trip, version byte 0x80 and a current timestamp")

    tampered = bytearray(raw)
    tampered[30] ^= 0x01  # one bit of the ciphertext
    results = {}
    for label, tok, fernet in [
            ("one ciphertext bit flipped", base64.urlsafe_b64encode(bytes(tampered)), f),
            ("another key", token, Fernet(Fernet.generate_key()))]:
        try:
            fernet.decrypt(tok)
            results[label] = "decrypted?!"
        except InvalidToken:
            results[label] = "InvalidToken"
        print("  decrypt with %-27s -> %s" % (label, results[label]))
    check(set(results.values()) == {"InvalidToken"}, "tampering and a wrong key are detected")

    t0 = 1_700_000_000
    old = f.encrypt_at_time(b"session", current_time=t0)
    fresh = f.decrypt_at_time(old, ttl=60, current_time=t0 + 30)
    try:
        f.decrypt_at_time(old, ttl=60, current_time=t0 + 61)
        expired = False
    except InvalidToken:
        expired = True
    print("  ttl=60: decrypt 30 s after encryption -> %r; 61 s after -> %s"
          % (fresh, "InvalidToken" if expired else "accepted?!"))
    check(fresh == b"session" and expired, "Fernet enforces the TTL from the token's timestamp")

    new = Fernet(Fernet.generate_key())
    rotated = MultiFernet([new, f]).rotate(token)  # decrypt with any, encrypt with the first
    print("  MultiFernet([new, old]).rotate(token) -> readable by the new key alone: %s"
          % (new.decrypt(rotated) == plaintext))
    check(new.decrypt(rotated) == plaintext, "key rotation re-encrypts under the new key")


# --------------------------------------------------------------------------
# 5. RSA-PSS
# --------------------------------------------------------------------------

def section_rsa():
    heading("5. RSA-PSS signatures")
    t0 = time.perf_counter()
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    print("  generated a 2048-bit RSA key in %.0f ms" % ((time.perf_counter() - t0) * 1e3))
    public = private.public_key()
    pem = public.public_bytes(serialization.Encoding.PEM,
                              serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    print("  public key: %s ... %s" % (pem.splitlines()[1][:40], pem.splitlines()[-1]))
    pss = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.MAX_LENGTH)
    message = b"release archtrace 1.0, sha256=ab12..."
    sig1 = private.sign(message, pss, hashes.SHA256())
    sig2 = private.sign(message, pss, hashes.SHA256())
    print("  two signatures of the same message: %s... / %s... (%d bytes each)"
          % (sig1.hex()[:16], sig2.hex()[:16], len(sig1)))

    def verifies(sig, msg):
        try:
            public.verify(sig, msg, pss, hashes.SHA256())
            return True
        except InvalidSignature:
            return False

    ok1, ok2 = verifies(sig1, message), verifies(sig2, message)
    bad = verifies(sig1, message.replace(b"1.0", b"1.1"))
    print("  verify(sig1) = %s, verify(sig2) = %s, verify(sig1, changed message) = %s"
          % (ok1, ok2, bad))
    check(sig1 != sig2, "PSS signatures are randomised")
    check(ok1 and ok2 and not bad, "the signature verifies and a modified message fails")


# --------------------------------------------------------------------------
# 6. X25519 + HKDF
# --------------------------------------------------------------------------

def derive(private, peer_public_bytes):
    shared = private.exchange(x25519.X25519PublicKey.from_public_bytes(peer_public_bytes))
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None,
               info=b"lab14 handshake v1").derive(shared)
    return shared, key


def section_x25519():
    heading("6. X25519 key agreement + HKDF")
    alice, bob, eve = (x25519.X25519PrivateKey.generate() for _ in range(3))
    raw = serialization.Encoding.Raw, serialization.PublicFormat.Raw
    a_pub, b_pub, e_pub = (k.public_key().public_bytes(*raw) for k in (alice, bob, eve))
    print("  alice sends %s... (32 bytes); bob sends %s..." % (a_pub.hex()[:16], b_pub.hex()[:16]))
    a_shared, a_key = derive(alice, b_pub)
    b_shared, b_key = derive(bob, a_pub)
    e_shared, e_key = derive(eve, b_pub)  # eve knows both public keys, not a secret one
    print("  alice: shared %s... -> HKDF key %s..." % (a_shared.hex()[:16], a_key.hex()[:16]))
    print("  bob  : shared %s... -> HKDF key %s..." % (b_shared.hex()[:16], b_key.hex()[:16]))
    print("  eve  : shared %s... -> HKDF key %s..." % (e_shared.hex()[:16], e_key.hex()[:16]))
    check(a_shared == b_shared and a_key == b_key, "both sides derive the same key")
    check(e_key != a_key, "a third party's key agreement gives a different key")
    token = Fernet(base64.urlsafe_b64encode(a_key)).encrypt(b"meet at noon")
    read = Fernet(base64.urlsafe_b64encode(b_key)).decrypt(token)
    print("  alice encrypts with her derived key, bob decrypts: %r" % read)
    check(read == b"meet at noon", "the derived key works as a Fernet key on both sides")


# --------------------------------------------------------------------------
# 7. Safe unpickling
# --------------------------------------------------------------------------

SAFE_GLOBALS = {
    ("builtins", "set"), ("builtins", "frozenset"), ("builtins", "complex"),
    ("datetime", "datetime"), ("datetime", "date"), ("datetime", "timedelta"),
    ("decimal", "Decimal"), ("collections", "OrderedDict"),
}


class RestrictedUnpickler(pickle.Unpickler):
    """An Unpickler that resolves only the globals in SAFE_GLOBALS."""

    def find_class(self, module, name):
        if (module, name) in SAFE_GLOBALS:
            return super().find_class(module, name)
        raise pickle.UnpicklingError("global '%s.%s' is forbidden" % (module, name))


def safe_loads(data):
    return RestrictedUnpickler(io.BytesIO(data)).load()


def section_pickle(tmpdir):
    heading("7. pickle runs code; a restricted find_class stops it")
    marker = os.path.join(tmpdir, "pwned")

    class Shell:
        def __reduce__(self):  # "to rebuild me, call os.system(<command>)"
            return (os.system, ("touch " + marker,))

    class Evaluator:
        def __reduce__(self):
            return (eval, ("__import__('os').system('touch %s')" % marker,))

    payloads = {
        "os.system via __reduce__": pickle.dumps(Shell()),  # dumps runs nothing
        # protocol 2 names builtins "__builtin__", Python 2's name for it
        "eval via __reduce__": pickle.dumps(Evaluator(), protocol=2),
        "hand-written protocol 0": b"cos\nsystem\n(S'touch " + marker.encode() + b"'\ntR.",
    }
    print("  pickletools.dis of the first payload (never loaded with pickle.loads):")
    out = io.StringIO()
    pickletools.dis(payloads["os.system via __reduce__"], out=out)
    for line in out.getvalue().splitlines():
        if any(op in line for op in ("GLOBAL", "UNICODE", "REDUCE")):
            print("      " + line.strip()[:100])
    print("  -> loading it would import posix.system and call it: REDUCE calls any callable")

    benign = {"when": datetime.datetime(2026, 1, 2, 3, 4), "tags": {"a", "b"},
              "price": decimal.Decimal("9.99"), "order": collections.OrderedDict(x=1)}
    loaded = safe_loads(pickle.dumps(benign))
    print("  benign data through safe_loads: %r" % (loaded,))
    check(loaded == benign, "allowed globals (datetime, set, Decimal, OrderedDict) still load")

    refused = {}
    for label, data in payloads.items():
        try:
            safe_loads(data)
            refused[label] = None
        except pickle.UnpicklingError as exc:
            refused[label] = str(exc)
        print("  safe_loads(%-26s) -> %s" % (label, "UnpicklingError: %s" % refused[label]
                                             if refused[label] else "LOADED?!"))
    check(all(refused.values()), "every malicious pickle is refused by find_class")
    check(not os.path.exists(marker), "no payload command ran")


def main():
    print("Lab 14: secrets, hashing, Fernet, RSA-PSS, X25519 and safe unpickling "
          "(cryptography %s, CPython %s)" % (cryptography.__version__, sys.version.split()[0]))
    section_random()
    section_hmac()
    section_hashlib()
    section_fernet()
    section_rsa()
    section_x25519()
    with tempfile.TemporaryDirectory(prefix="lab14-") as tmpdir:
        section_pickle(tmpdir)
    print()
    if FAILURES:
        print("FAIL lab14: %d check(s) failed: %s" % (len(FAILURES), "; ".join(FAILURES)))
        return 1
    print("VERIFY lab14: Fernet round trip and tamper detection, RSA-PSS verify and reject, "
          "X25519 sides agree, malicious pickles refused ... ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
