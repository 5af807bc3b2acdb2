"""The signature-policy language as text: tokens, a syntax tree, parsing and formatting.

Operators write endorsement and collection policies as strings such as
`OR('Org1MSP.peer', AND('Org2MSP.member', 'Org3MSP.member'))`. This module turns such a
string into a tree of `Gate` and `Principal` values and back; it knows nothing about
protobuf (`common.policies.envelope` maps the tree to a `SignaturePolicyEnvelope`).

Grammar (whitespace is allowed between tokens)::

    policy    := gate
    gate      := and_or "(" rule ("," rule)* ")"
               | outof "(" INTEGER "," rule ("," rule)* ")"
    rule      := gate | principal
    principal := "'" MSPID "." ROLE "'"  |  '"' MSPID "." ROLE '"'

The keywords are spelled as Fabric accepts them (`AND`/`And`/`and`, `OR`/`Or`/`or`,
`OutOf`/`outof`/`OUTOF`); an MSP id uses ASCII letters, digits, `.` and `-`; the role is
one of `member`, `admin`, `client`, `peer`, `orderer`.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from typing import NoReturn

from common.errors import PolicySyntaxError

__all__ = [
    "MAX_DEPTH",
    "Gate",
    "Principal",
    "Role",
    "Rule",
    "format_rule",
    "parse",
]

MAX_DEPTH = 32
"""Deepest gate nesting a policy string may have (bounds recursion and proto depth)."""


class Role(enum.Enum):
    """The role part of a principal; values are the spellings used in policy strings."""

    MEMBER = "member"
    ADMIN = "admin"
    CLIENT = "client"
    PEER = "peer"
    ORDERER = "orderer"


@dataclass(frozen=True, slots=True)
class Principal:
    """A signature from an identity of MSP `mspid` holding `role`."""

    mspid: str
    role: Role


@dataclass(frozen=True, slots=True)
class Gate:
    """Satisfied when at least `n` of `rules` are (AND: n = len(rules); OR: n = 1)."""

    n: int
    rules: tuple[Rule, ...]


Rule = Gate | Principal

_AND_WORDS = frozenset({"AND", "And", "and"})
_OR_WORDS = frozenset({"OR", "Or", "or"})
_OUTOF_WORDS = frozenset({"OutOf", "outof", "OUTOF"})
_KEYWORDS = _AND_WORDS | _OR_WORDS | _OUTOF_WORDS
_ROLES = {role.value: role for role in Role}
_MSPID_CHAR = re.compile(r"[A-Za-z0-9.\-]")
_INTEGER = re.compile(r"-?[0-9]+")


def parse(text: str) -> Gate:
    """Parse a policy string into its gate tree.

    Raises:
        PolicySyntaxError: the text is not a policy; `position` is the 0-based offset of
            the offending character.
    """
    return _Parser(text, _tokenize(text)).parse_policy()


def format_rule(rule: Rule) -> str:
    """Render a rule canonically: OR when n is 1, AND when n is all, else OutOf."""
    if isinstance(rule, Principal):
        return f"'{rule.mspid}.{rule.role.value}'"
    inner = ", ".join(format_rule(sub) for sub in rule.rules)
    if rule.n == 1 and rule.rules:
        return f"OR({inner})"
    if rule.n == len(rule.rules):
        return f"AND({inner})"
    return f"OutOf({rule.n}, {inner})"


# --- tokens ---------------------------------------------------------------------------


class _Kind(enum.StrEnum):
    LPAREN = "'('"
    RPAREN = "')'"
    COMMA = "','"
    STRING = "a quoted string"
    NUMBER = "a number"
    WORD = "a word"
    OTHER = "a character"
    END = "the end of the policy"


@dataclass(frozen=True, slots=True)
class _Token:
    kind: _Kind
    text: str  # for STRING the content between the quotes
    position: int


_WHITESPACE = frozenset(" \t\r\n")
_PUNCTUATION = {"(": _Kind.LPAREN, ")": _Kind.RPAREN, ",": _Kind.COMMA}
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_.]*")
_NUMBER = re.compile(r"[+-]?[0-9][A-Za-z0-9_.]*")


def _tokenize(text: str) -> list[_Token]:
    """Split the text into tokens, ending with an END token at len(text)."""
    tokens: list[_Token] = []
    position = 0
    while position < len(text):
        char = text[position]
        if char in _WHITESPACE:
            position += 1
            continue
        token = _read_token(text, position)
        tokens.append(token)
        position = token.position + _token_length(token)
    tokens.append(_Token(_Kind.END, "", len(text)))
    return tokens


def _read_token(text: str, position: int) -> _Token:
    char = text[position]
    if char in _PUNCTUATION:
        return _Token(_PUNCTUATION[char], char, position)
    if char in "'\"":
        end = text.find(char, position + 1)
        if end < 0:
            raise PolicySyntaxError(
                f"missing closing quote {char}", text=text, position=position
            )
        return _Token(_Kind.STRING, text[position + 1 : end], position)
    for kind, pattern in ((_Kind.WORD, _WORD), (_Kind.NUMBER, _NUMBER)):
        match = pattern.match(text, position)
        if match:
            return _Token(kind, match.group(), position)
    return _Token(_Kind.OTHER, char, position)


def _token_length(token: _Token) -> int:
    return len(token.text) + 2 if token.kind is _Kind.STRING else len(token.text)


def _describe(token: _Token) -> str:
    if token.kind in (_Kind.END, _Kind.LPAREN, _Kind.RPAREN, _Kind.COMMA):
        return token.kind.value
    return f"{token.kind.value} {token.text!r}"


# --- parser ---------------------------------------------------------------------------


class _Parser:
    """Recursive descent over the token list; one method per grammar rule."""

    def __init__(self, text: str, tokens: list[_Token]) -> None:
        self._text = text
        self._tokens = tokens
        self._index = 0

    def parse_policy(self) -> Gate:
        first = self._peek()
        if first.kind is _Kind.END:
            self._fail("empty policy", first)
        if first.kind is _Kind.STRING:
            self._fail(
                "a policy must be a gate such as OR(...), not a principal", first
            )
        gate = self._parse_gate(depth=1)
        extra = self._peek()
        if extra.kind is _Kind.RPAREN:
            self._fail("unbalanced ')'", extra)
        if extra.kind is not _Kind.END:
            self._fail(f"unexpected {extra.text!r} after the policy", extra)
        return gate

    def _parse_gate(self, *, depth: int) -> Gate:
        keyword = self._next()
        if keyword.kind is _Kind.WORD and keyword.text not in _KEYWORDS:
            self._fail(
                f"unknown gate {keyword.text!r}; expected AND, OR or OutOf", keyword
            )
        if keyword.kind is not _Kind.WORD:
            self._fail(
                f"expected AND, OR or OutOf, found {_describe(keyword)}", keyword
            )
        if depth > MAX_DEPTH:
            self._fail(f"gates nested deeper than {MAX_DEPTH} levels", keyword)
        opening = self._next()
        if opening.kind is not _Kind.LPAREN:
            self._fail(f"expected '(' after {keyword.text}", opening)
        if keyword.text in _OUTOF_WORDS:
            return self._parse_outof(opening, depth=depth)
        rules = self._parse_rules(opening, depth=depth)
        return Gate(n=len(rules) if keyword.text in _AND_WORDS else 1, rules=rules)

    def _parse_outof(self, opening: _Token, *, depth: int) -> Gate:
        threshold = self._next()
        if threshold.kind is not _Kind.NUMBER or not _INTEGER.fullmatch(threshold.text):
            self._fail(
                f"OutOf threshold must be an integer, found {_describe(threshold)}",
                threshold,
            )
        separator = self._next()
        if separator.kind is _Kind.RPAREN:
            self._fail("OutOf needs at least one rule after its threshold", separator)
        if separator.kind is not _Kind.COMMA:
            self._fail(
                f"expected ',' after the threshold, found {_describe(separator)}",
                separator,
            )
        rules = self._parse_rules(opening, depth=depth)
        n = int(threshold.text)
        if n < 1:
            self._fail(f"OutOf threshold {n} must be at least 1", threshold)
        if n > len(rules):
            self._fail(
                f"OutOf threshold {n} exceeds the number of rules ({len(rules)})",
                threshold,
            )
        return Gate(n=n, rules=rules)

    def _parse_rules(self, opening: _Token, *, depth: int) -> tuple[Rule, ...]:
        if self._peek().kind is _Kind.RPAREN:
            self._fail("empty argument list", self._peek())
        rules = [self._parse_rule(depth=depth)]
        while True:
            token = self._next()
            if token.kind is _Kind.RPAREN:
                return tuple(rules)
            if token.kind is _Kind.END:
                self._fail("unbalanced '(': missing ')'", opening)
            if token.kind is not _Kind.COMMA:
                self._fail(f"expected ',' or ')', found {_describe(token)}", token)
            rules.append(self._parse_rule(depth=depth))

    def _parse_rule(self, *, depth: int) -> Rule:
        token = self._peek()
        if token.kind is _Kind.STRING:
            self._index += 1
            return self._parse_principal(token)
        if token.kind is _Kind.WORD and token.text in _KEYWORDS:
            return self._parse_gate(depth=depth + 1)
        if token.kind is _Kind.WORD and self._peek(1).kind is _Kind.LPAREN:
            self._fail(f"unknown gate {token.text!r}; expected AND, OR or OutOf", token)
        if token.kind in (_Kind.WORD, _Kind.NUMBER):
            self._fail(
                f"a principal must be a quoted string like 'Org1MSP.member', "
                f"found {_describe(token)}",
                token,
            )
        self._fail(f"expected a principal or a gate, found {_describe(token)}", token)

    def _parse_principal(self, token: _Token) -> Principal:
        content, start = token.text, token.position + 1
        dot = content.rfind(".")
        if dot < 0:
            self._fail_at(
                f"principal {content!r} is not of the form 'MSPID.role'", start
            )
        mspid, role = content[:dot], content[dot + 1 :]
        if role not in _ROLES:
            self._fail_at(
                f"unknown role {role!r}; expected member, admin, client, peer, orderer",
                start + dot + 1,
            )
        if not mspid:
            self._fail_at("missing MSP id before the role", start)
        for offset, char in enumerate(mspid):
            if not _MSPID_CHAR.fullmatch(char):
                self._fail_at(f"invalid character {char!r} in MSP id", start + offset)
        return Principal(mspid=mspid, role=_ROLES[role])

    def _peek(self, ahead: int = 0) -> _Token:
        return self._tokens[min(self._index + ahead, len(self._tokens) - 1)]

    def _next(self) -> _Token:
        token = self._peek()
        self._index = min(self._index + 1, len(self._tokens) - 1)
        return token

    def _fail(self, message: str, token: _Token) -> NoReturn:
        raise PolicySyntaxError(message, text=self._text, position=token.position)

    def _fail_at(self, message: str, position: int) -> NoReturn:
        raise PolicySyntaxError(message, text=self._text, position=position)
