"""Encryption at rest of personal data fields (victims' and suspects' names, phones, details).

A value is sealed with AES-256-GCM into a self-describing token
``sg1:<kid>:<base64url(nonce | ciphertext+tag)>``:

- ``kid`` names the key, so keys can rotate: the keyring's first key encrypts,
  every key decrypts, and `reencrypt` moves old tokens to the current key.
- The field's ``context`` (e.g. ``"report.details"``) is the associated data,
  so a token copied into another field does not decrypt there.
- The nonce is 96 random bits. NIST's bound for random GCM nonces is 2**32
  messages per key; rotate long before that (it is far beyond SafeGrid's volume).

Keys come from one string, ``"k2:BASE64KEY,k1:BASE64KEY"`` (the settings read
it from the environment or a KMS; this module never reads the environment).
Nothing here logs or puts into an exception message a key or a plaintext.
"""

from __future__ import annotations

import base64
import binascii
import logging
import re
import secrets
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import mongoengine as me
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from mongoengine.errors import InvalidQueryError

log = logging.getLogger(__name__)

TOKEN_PREFIX = "sg1:"  # noqa: S105 - the token format's version tag, not a secret
KEY_BYTES = 32  # AES-256
NONCE_BYTES = 12  # 96-bit nonce, the size GCM is designed for
TAG_BYTES = 16
_KID_RE = re.compile(r"[A-Za-z0-9_.-]{1,32}")


class KeyringError(ValueError):
    """The key configuration is unusable (the message names the key id, never the key)."""


class KeyringNotConfigured(RuntimeError):
    """No keyring is bound to this process."""


class DecryptError(Exception):
    """A token cannot be decrypted: malformed, unknown key, wrong context or tampered.

    Deliberately not a ValueError, so mongoengine's loader does not swallow it.
    """


class UnknownKeyError(DecryptError):
    """The token names a key id that is not in the keyring."""


def _b64decode(text: str) -> bytes:
    """Standard or urlsafe base64, padding optional."""
    text = text.strip()
    text += "=" * (-len(text) % 4)
    return base64.b64decode(text.replace("-", "+").replace("_", "/"), validate=True)


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def is_encrypted(value: object) -> bool:
    """True when `value` is a string in the sealed-token format (else: legacy plaintext)."""
    return isinstance(value, str) and value.startswith(TOKEN_PREFIX)


def _split(token: str) -> tuple[str, bytes]:
    """(kid, nonce|ciphertext) of a token; DecryptError when malformed."""
    if not is_encrypted(token):
        raise DecryptError("not a SafeGrid sealed token")
    kid, sep, body = token[len(TOKEN_PREFIX):].partition(":")
    if not sep or not _KID_RE.fullmatch(kid):
        raise DecryptError("malformed sealed token: bad key id")
    try:
        blob = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
    except (binascii.Error, ValueError):
        raise DecryptError(f"malformed sealed token (key id {kid}): bad base64") from None
    if len(blob) < NONCE_BYTES + TAG_BYTES:
        raise DecryptError(f"malformed sealed token (key id {kid}): too short")
    return kid, blob


def key_id(token: str) -> str:
    """The key id a token was sealed with."""
    return _split(token)[0]


class Keyring:
    """Named AES-256 keys; the first is current (encrypts), all decrypt."""

    def __init__(self, keys: Mapping[str, bytes] | Iterable[tuple[str, bytes]]) -> None:
        pairs = list(keys.items()) if isinstance(keys, Mapping) else list(keys)
        if not pairs:
            raise KeyringError("the keyring is empty: give at least one 'kid:base64key'")
        self._aead: dict[str, AESGCM] = {}
        for kid, key in pairs:
            if not _KID_RE.fullmatch(kid):
                raise KeyringError(
                    f"key id {kid[:40]!r} is invalid: use 1-32 of A-Z a-z 0-9 _ . -"
                )
            if kid in self._aead:
                raise KeyringError(f"key id {kid!r} appears twice")
            if len(key) != KEY_BYTES:
                raise KeyringError(
                    f"key {kid!r} is {len(key)} bytes; AES-256 needs {KEY_BYTES}"
                )
            self._aead[kid] = AESGCM(key)
        self._current = pairs[0][0]

    @classmethod
    def from_env_value(cls, value: str) -> Keyring:
        """Parse ``"k2:BASE64KEY,k1:BASE64KEY"`` (first is current; whitespace ignored)."""
        pairs: list[tuple[str, bytes]] = []
        entries = [e.strip() for e in value.split(",")]
        for number, entry in enumerate(entries, start=1):
            if not entry:
                continue  # tolerate a trailing comma
            kid, sep, encoded = entry.partition(":")
            kid = kid.strip()
            if not sep or not kid:
                # Do not echo the entry: it may be a bare key.
                raise KeyringError(f"keyring entry {number} is not 'kid:base64key'")
            try:
                key = _b64decode(encoded)
            except (binascii.Error, ValueError):
                raise KeyringError(f"key {kid!r} is not valid base64") from None
            pairs.append((kid, key))
        return cls(pairs)

    @staticmethod
    def generate_key() -> str:
        """A fresh random 32-byte key, urlsafe base64 (for ``kid:KEY`` in the environment)."""
        return base64.urlsafe_b64encode(secrets.token_bytes(KEY_BYTES)).decode("ascii")

    @property
    def current_kid(self) -> str:
        return self._current

    @property
    def kids(self) -> tuple[str, ...]:
        return tuple(self._aead)

    def __repr__(self) -> str:  # never the keys
        return f"Keyring(current={self._current!r}, kids={list(self._aead)!r})"

    def encrypt(self, plaintext: str, *, context: str) -> str:
        """Seal `plaintext` with the current key, bound to `context`."""
        if not isinstance(plaintext, str):
            raise TypeError("only str values can be sealed")
        nonce = secrets.token_bytes(NONCE_BYTES)
        sealed = self._aead[self._current].encrypt(
            nonce, plaintext.encode("utf-8"), context.encode("utf-8")
        )
        return f"{TOKEN_PREFIX}{self._current}:{_b64url(nonce + sealed)}"

    def decrypt(self, token: str, *, context: str) -> str:
        """The plaintext of `token`; DecryptError (no data in the message) when it cannot be."""
        kid, blob = _split(token)
        aead = self._aead.get(kid)
        if aead is None:
            raise UnknownKeyError(
                f"sealed with key id {kid!r}, which is not in the keyring "
                f"(known: {', '.join(self._aead)}); was a retired key removed too early?"
            )
        try:
            data = aead.decrypt(blob[:NONCE_BYTES], blob[NONCE_BYTES:], context.encode("utf-8"))
        except InvalidTag:
            raise DecryptError(
                f"cannot open a token sealed with key id {kid!r} as {context!r}: "
                "altered, or sealed for another field"
            ) from None
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:  # cannot happen for tokens we sealed
            raise DecryptError(f"token under key id {kid!r} is not UTF-8 text") from None

    def needs_rotation(self, token: str) -> bool:
        """True when `token` was sealed with a key other than the current one."""
        return key_id(token) != self._current


# The process's keyring, bound by the app factory / CLI (`set_keyring`), like
# the Redis holder in `gateway.extensions`.
_bound: list[Keyring] = []


def set_keyring(ring: Keyring | None) -> None:
    """Bind (or with None, unbind) the keyring the encrypted fields use."""
    _bound[:] = [] if ring is None else [ring]


def keyring() -> Keyring:
    """The bound keyring; KeyringNotConfigured when none is."""
    if not _bound:
        raise KeyringNotConfigured(
            "no data keyring is bound: set SAFEGRID_DATA_KEYS and call create_app() "
            "(or gateway.crypto.set_keyring())"
        )
    return _bound[0]


def unseal(value: str | None, *, context: str) -> str:
    """The clear text of a value sealed for `context` ("" for None; legacy clear text as is)."""
    if value is None:
        return ""
    return keyring().decrypt(value, context=context) if is_encrypted(value) else value


_WRITE_OPS = frozenset({"set", "setOnInsert", "set_on_insert"})


class EncryptedStringField(me.StringField):  # mongoengine is untyped: its base is Any
    """A string stored as a sealed token; Python code sees the plaintext.

    - Legacy plaintext in the database (not starting with ``sg1:``) loads as is;
      `reencrypt` seals it. A stored value that starts with ``sg1:`` but does not
      open raises DecryptError: tampering is never passed off as text.
    - Values passed to the constructor go through `to_python` too, so a user's
      text that starts with ``sg1:`` is taken for a token: input schemas should
      reject that prefix for these fields.
    - Sealed values cannot be queried by value (each seal uses a fresh nonce);
      ``set``/``set_on_insert`` updates are sealed, ``exists`` works, other
      query ops raise (a blind index field is what finds a value: gateway/privacy/phonebook.py).
    - ``max_length`` etc. apply to the plaintext.
    """

    def __init__(self, context: str, **kwargs: Any) -> None:
        if not context:
            raise ValueError("EncryptedStringField needs a context, e.g. 'report.details'")
        if kwargs.get("unique") or kwargs.get("primary_key"):
            raise ValueError("an encrypted field cannot be unique or a key (tokens are random)")
        self.context = context
        super().__init__(**kwargs)

    def to_python(self, value: Any) -> Any:
        if is_encrypted(value):
            return keyring().decrypt(value, context=self.context)
        return super().to_python(value)

    def to_mongo(self, value: Any) -> Any:
        if value is None:
            return None
        value = super().to_python(value)
        if not isinstance(value, str):
            self.error("EncryptedStringField only accepts string values")
        return keyring().encrypt(value, context=self.context)

    def prepare_query_value(self, op: str | None, value: Any) -> Any:
        if value is None:
            return None
        if op in _WRITE_OPS:
            self.validate(value)
            return self.to_mongo(value)
        if op == "exists":
            return value
        raise InvalidQueryError(
            f"field {self.name!r} is encrypted: it cannot be matched by value (op {op!r})"
        )


def sealed_paths(document_class: type[me.Document]) -> dict[str, str]:
    """db field name → encryption context, for a document class's EncryptedStringFields."""
    return {
        field.db_field: field.context
        for field in document_class._fields.values()
        if isinstance(field, EncryptedStringField)
    }


class ReencryptError(RuntimeError):
    """Some stored values could not be decrypted; the rest were re-encrypted."""

    def __init__(self, message: str, rewritten: int) -> None:
        super().__init__(message)
        self.rewritten = rewritten


def _at(doc: Mapping[str, Any], path: str) -> Any:
    """The value at a dotted path of a raw document (None when absent)."""
    value: Any = doc
    for part in path.split("."):
        if not isinstance(value, Mapping):
            return None
        value = value.get(part)
    return value


# Stored path → encryption context: "raw.hex" for a sub-field, "notes[].text" for a
# field of every element of a list.
SealedPaths = Mapping[str, str]


def _resealed(ring: Keyring, old: object, context: str) -> str | None:
    """`old` sealed with the current key, or None when it already is (or is not text)."""
    if not isinstance(old, str):
        return None
    if not is_encrypted(old):
        return ring.encrypt(old, context=context)  # legacy, stored before encryption was on
    if ring.needs_rotation(old):
        return ring.encrypt(ring.decrypt(old, context=context), context=context)
    return None


def _rewrite(ring: Keyring, raw: Mapping[str, Any], path: str,
             context: str) -> tuple[str, Any, Any] | None:
    """(stored field, old value, new value) that re-seals `path` in `raw`; None if current.

    For a list path (``notes[].text``) the field is the whole list, rewritten.
    """
    array, is_list, key = path.partition("[].")
    if not is_list:
        old = _at(raw, path)
        new = _resealed(ring, old, context)
        return None if new is None else (path, old, new)
    old_list = _at(raw, array)
    if not isinstance(old_list, list):
        return None
    new_list = []
    for item in old_list:
        new = _resealed(ring, item.get(key), context) if isinstance(item, dict) else None
        new_list.append(item if new is None else {**item, key: new})
    return None if new_list == old_list else (array, old_list, new_list)


def _stale(path: str, condition: Mapping[str, Any]) -> dict[str, Any]:
    """The query matching documents where `path` (a list path too) meets `condition`."""
    array, is_list, key = path.partition("[].")
    return {array: {"$elemMatch": {key: condition}}} if is_list else {path: condition}


def _targets(
    targets: Iterable[type[me.Document]] | Mapping[type[me.Document], SealedPaths],
) -> list[tuple[type[me.Document], SealedPaths]]:
    if isinstance(targets, Mapping):
        return list(targets.items())
    return [(cls, sealed_paths(cls)) for cls in targets]


def reencrypt(
    targets: Iterable[type[me.Document]] | Mapping[type[me.Document], SealedPaths],
    *,
    ring: Keyring | None = None,
    echo: Callable[[str], None] | None = None,
) -> int:
    """Seal every stored value of the targets' sealed fields with the current key.

    `targets` are document classes (their EncryptedStringFields), or a mapping
    of class → {stored path: context} for values sealed by hand (SMS records,
    sub-fields such as ``raw.hex``). Rewrites tokens of older keys and legacy
    plaintext; returns how many values it rewrote, so a second run returns 0.
    Each document is one ``update_one`` guarded on the old values (no
    transaction): a document changed meanwhile is skipped, and was written with
    the current key by whoever changed it (run again to be sure). Values that
    cannot be decrypted are left alone and reported by id; the walk finishes,
    then ReencryptError. Remove a retired key from the environment only after a
    clean run.
    """
    ring = ring or keyring()
    say = echo or (lambda line: log.info("%s", line))
    rewritten = failed = 0
    for cls, fields in _targets(targets):
        if not fields:
            continue
        collection = cls._get_collection()
        current = re.compile("^" + re.escape(f"{TOKEN_PREFIX}{ring.current_kid}:"))
        # Strings not already sealed with the current key; the guard below keeps
        # it correct if a value changes between this read and the update.
        stale = {"$type": "string", "$not": current}
        query = {"$or": [_stale(name, stale) for name in fields]}
        projection = {name.partition("[].")[0]: 1 for name in fields}
        done = skipped = bad = 0
        for raw in collection.find(query, projection):
            guard: dict[str, Any] = {"_id": raw["_id"]}
            changes: dict[str, Any] = {}
            for name, context in fields.items():
                try:
                    rewrite = _rewrite(ring, raw, name, context)
                except DecryptError as exc:
                    bad += 1
                    say(f"{cls.__name__}.{name} of {raw['_id']}: cannot decrypt: {exc}")
                    continue
                if rewrite is not None:
                    field, old, new = rewrite
                    guard[field], changes[field] = old, new
            if not changes:
                continue
            result = collection.update_one(guard, {"$set": changes})
            if result.modified_count:
                done += len(changes)
            else:
                skipped += 1
        say(f"{cls.__name__}: {done} value(s) re-encrypted with key {ring.current_kid!r}, "
            f"{skipped} document(s) changed meanwhile (skipped), {bad} undecryptable")
        rewritten += done
        failed += bad
    if failed:
        raise ReencryptError(
            f"{failed} value(s) could not be decrypted and were left as they are; "
            f"{rewritten} re-encrypted", rewritten,
        )
    return rewritten
