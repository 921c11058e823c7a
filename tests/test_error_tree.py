"""The exception tree drawn in ``_errors.py``'s docstring is the real one.

Each drawn class exists and its direct bases are exactly the class it is drawn
under, the other places it is drawn, and the classes its note calls "also X";
every exception the package exports or ``_errors`` defines is drawn.
"""

from __future__ import annotations

import inspect
import re
from dataclasses import dataclass

import httpx
import pytest

import whop_oauth
from whop_oauth import _errors

_LINE = re.compile(r"^(?P<indent>[ │]*)(?:[├└]── )?(?P<name>[A-Z]\w*)\s*(?:\((?P<note>.*)\))?\s*$")
_ALSO = re.compile(r"\balso (\w+)")


@dataclass(frozen=True)
class Drawn:
    name: str
    parent: str | None
    also: tuple[str, ...]


def drawn_tree(docstring: str) -> list[Drawn]:
    """The classes of the ``::`` block that starts with ``WhopOAuthError``, with their parents."""
    lines = docstring.split("WhopOAuthError\n", 1)[1].split("\n\n", 1)[0].splitlines()
    found = [Drawn("WhopOAuthError", None, ())]
    stack = ["WhopOAuthError"]  # stack[depth] is the last class drawn at that depth
    for line in lines:
        match = _LINE.match(line.removeprefix("    "))
        assert match, f"unreadable line in the drawn tree: {line!r}"
        depth = len(match["indent"]) // 4 + 1
        del stack[depth:]
        found.append(
            Drawn(match["name"], stack[depth - 1], tuple(_ALSO.findall(match["note"] or "")))
        )
        stack.append(match["name"])
    return found


TREE = drawn_tree(_errors.__doc__ or "")


def _library_exceptions() -> set[str]:
    exported = {
        name
        for name in whop_oauth.__all__
        if inspect.isclass(getattr(whop_oauth, name))
        and issubclass(getattr(whop_oauth, name), BaseException)
    }
    defined = {
        name
        for name, value in vars(_errors).items()
        if inspect.isclass(value)
        and issubclass(value, BaseException)
        and value.__module__ == _errors.__name__
    }
    return exported | defined


def test_the_parser_reads_parents_depth_and_notes() -> None:
    tree = drawn_tree(
        "x::\n\n    WhopOAuthError\n    ├── A               (also ValueError: why)\n"
        "    │   └── B\n    └── C\n        └── D           (also B)\n\nmore"
    )

    assert tree[1:] == [
        Drawn("A", "WhopOAuthError", ("ValueError",)),
        Drawn("B", "A", ()),
        Drawn("C", "WhopOAuthError", ()),
        Drawn("D", "C", ("B",)),
    ]


def test_the_drawing_names_every_exception_of_the_package() -> None:
    assert {drawn.name for drawn in TREE} == _library_exceptions()


@pytest.mark.parametrize("name", sorted({drawn.name for drawn in TREE}))
def test_each_drawn_class_has_exactly_the_bases_drawn_for_it(name: str) -> None:
    cls = getattr(_errors, name)
    drawings = [drawn for drawn in TREE if drawn.name == name]
    expected = {drawn.parent for drawn in drawings if drawn.parent} | {
        also for drawn in drawings for also in drawn.also
    }

    assert {base.__name__ for base in cls.__bases__} == (expected or {"Exception"})


def test_every_library_error_derives_from_the_root() -> None:
    for name in _library_exceptions():
        assert issubclass(getattr(_errors, name), whop_oauth.WhopOAuthError), name


def test_values_that_are_not_one_stay_value_errors_for_old_except_clauses() -> None:
    with pytest.raises(ValueError, match="access_token"):
        whop_oauth.Token.from_dict({"refresh_token": "rt"})
    with pytest.raises(ValueError, match="tenant"):
        whop_oauth.TokenKey("", "user_1", "https://issuer.example", "app_1")
    with pytest.raises(whop_oauth.InvalidValueError, match="state"):
        whop_oauth.AuthorizationRequest(
            url="https://issuer.example/authorize",
            state="",
            code_verifier="v" * 43,
            nonce="n",
            redirect_uri="https://app.example/cb",
            issuer="https://issuer.example",
            scope=("openid",),
        )


@pytest.mark.parametrize(
    "bad",
    [{"access_token": "at", "expires_at": "soon"}, {"access_token": "at", "scopes": 5}, ["at"]],
)
def test_a_token_dict_with_wrong_types_is_an_invalid_value_not_a_bare_error(bad: object) -> None:
    with pytest.raises(whop_oauth.InvalidValueError, match="not a serialised Token"):
        whop_oauth.Token.from_dict(bad)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "cls",
    [
        whop_oauth.ProviderError,
        whop_oauth.InvalidGrantError,
        whop_oauth.RateLimitedError,
        whop_oauth.ServerUnavailableError,
        whop_oauth.InvalidResponseError,
    ],
)
def test_provider_answers_keep_their_response_keyword_only_in_one_place(
    cls: type[whop_oauth.ProviderResponseError],
) -> None:
    response = httpx.Response(503)

    answered = cls("an answer", response=response)

    assert isinstance(answered, whop_oauth.ProviderResponseError)
    assert answered.response is response
    assert answered.status_code == 503
    assert cls("no answer").status_code is None
    with pytest.raises(TypeError):
        cls("an answer", None, None, response)  # type: ignore[misc]
