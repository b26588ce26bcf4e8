"""Seeds, the HMAC byte stream and the floats, against the naive reference and pinned
vectors."""

from __future__ import annotations

import hashlib
import hmac
import itertools
import random
import string

import pytest

from casino_app.games import fairness
from casino_app.games.fairness import FairnessError
from tests.games import reference

SEED = "b3a1e6f0c2d94e7a8f1b5c3d2e6a9f0b7c4d1e8a2f5b3c6d9e0a1b4c7d2e5f8a"


def test_new_server_seed_is_64_lowercase_hex_and_hash_is_sha256_of_the_hex_text() -> None:
    seeds = {fairness.new_server_seed() for _ in range(50)}
    assert len(seeds) == 50
    for s in seeds:
        assert len(s) == 64 and set(s) <= set("0123456789abcdef")
        assert fairness.hash_server_seed(s) == hashlib.sha256(s.encode()).hexdigest()
    assert fairness.hash_server_seed(SEED) == (
        "bb791714a1cefb682c0979998f6e3eb71979041126911c4ce4eb66655c95b771")


def test_new_client_seed_is_random_and_valid() -> None:
    seeds = {fairness.new_client_seed() for _ in range(50)}
    assert len(seeds) == 50
    for s in seeds:
        assert len(s) == 16 and fairness.validate_client_seed(s) == s


@pytest.mark.parametrize("raw, expected", [
    ("  lucky-7  ", "lucky-7"), ("x", "x"), ("A" * 64, "A" * 64),
    ("!#$%&'()*+,-./:;<=>?@[]^_`{|}~", "!#$%&'()*+,-./:;<=>?@[]^_`{|}~"),
])
def test_client_seed_accepts_printable_ascii_and_strips(raw: str, expected: str) -> None:
    assert fairness.validate_client_seed(raw) == expected


@pytest.mark.parametrize("raw, words", [
    ("", "empty"), ("   ", "empty"), ("A" * 65, "at most 64"), ("two words", "without spaces"),
    ("tab\there", "without spaces"), ("café", "ASCII"), ("nul\x00", "ASCII"), (None, "text"),
])
def test_client_seed_rejects_bad_input_with_a_clear_message(raw: object, words: str) -> None:
    with pytest.raises(FairnessError, match="client seed") as exc:
        fairness.validate_client_seed(raw)  # type: ignore[arg-type]
    assert words in str(exc.value)
    assert isinstance(exc.value, ValueError)


@pytest.mark.parametrize("seed", ["", SEED.upper(), SEED[:-1], SEED + "0", "g" * 64,
                                  bytes(32).hex().encode(), None])
def test_bad_server_seed_is_refused(seed: object) -> None:
    with pytest.raises(FairnessError, match="server seed: must be 64 lowercase"):
        fairness.floats(seed, "c", 0, 1)  # type: ignore[arg-type]
    with pytest.raises(FairnessError):
        fairness.hash_server_seed(seed)  # type: ignore[arg-type]


@pytest.mark.parametrize("nonce", [-1, 1.0, "1", True, None, 2**63])
def test_bad_nonce_is_refused(nonce: object) -> None:
    with pytest.raises(FairnessError, match="nonce"):
        fairness.floats(SEED, "c", nonce, 1)  # type: ignore[arg-type]


def test_byte_stream_is_the_hmac_rounds_in_order() -> None:
    got = bytes(itertools.islice(fairness.byte_stream(SEED, "lucky-7", 3), 100))
    key = SEED.encode()
    want = b"".join(hmac.new(key, f"lucky-7:3:{r}".encode(), hashlib.sha256).digest()
                    for r in range(4))
    assert got == want[:100]


def test_floats_match_the_naive_reference_for_random_inputs() -> None:
    rng = random.Random(7)
    for _ in range(300):
        seed = "".join(rng.choice("0123456789abcdef") for _ in range(64))
        client = "".join(rng.choice(string.ascii_letters + string.punctuation)
                         for _ in range(rng.randint(1, 64)))
        nonce = rng.choice([0, 1, rng.randrange(10**6), rng.randrange(2**63)])
        count = rng.randint(0, 30)
        got = fairness.floats(seed, client, nonce, count)
        assert got == reference.floats(seed, client, nonce, count)
        assert all(0 <= f < 1 for f in got)
        assert fairness.FloatSource(seed).floats(client, nonce, count) == got


def test_floats_are_exactly_uint32_over_2_to_the_32() -> None:
    data = b"".join(hmac.new(SEED.encode(), f"c:9:{r}".encode(), hashlib.sha256).digest()
                    for r in range(2))
    want = [int.from_bytes(data[i:i + 4], "big") / 2**32 for i in range(0, 64, 4)]
    assert fairness.floats(SEED, "c", 9, 16) == want


def test_pinned_vectors() -> None:
    """Computed once with tests/games/reference.py and, separately, the browser verifier
    under Node (Web Crypto); they agreed."""
    assert fairness.round_bytes(SEED, "lucky-7", 0, 0).hex() == (
        "34d390efb5a22ea76efba412d2edf635d56926af942cf642aad2a092cf980bee")
    assert fairness.round_bytes(SEED, "lucky-7", 0, 1).hex() == (
        "70cda24fda86b6579a597266270405ae09eae90dabfd4d9120ec9023a8666e49")
    assert fairness.floats(SEED, "lucky-7", 0, 3) == [
        0.206353243207559, 0.7095059545245022, 0.43352723540738225]
