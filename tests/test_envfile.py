import pytest

from erpprov.envfile import parse_env
from erpprov.errors import ErpprovError


def test_forms_people_write():
    text = """
# a comment
PLAIN=value
export EXPORTED=yes
SPACED = padded
DOUBLE="two words # not a comment"
ESCAPED="line\\nnext \\"quoted\\""
HASH=pa#ss
COMMENTED=value # trailing comment
EMPTY=
"""
    assert parse_env(text) == {
        "PLAIN": "value",
        "EXPORTED": "yes",
        "SPACED": "padded",
        "DOUBLE": "two words # not a comment",
        "ESCAPED": 'line\nnext "quoted"',
        "HASH": "pa#ss",
        "COMMENTED": "value",
        "EMPTY": "",
    }


def test_single_quotes_are_raw():
    assert parse_env(r"A='a\nb'") == {"A": r"a\nb"}


@pytest.mark.parametrize(
    ("text", "line"),
    [("not a pair", 1), ("A=1\n1BAD=2", 2), ('A="open', 1), ("A='x' junk", 1)],
)
def test_bad_lines_name_file_and_line(text, line):
    with pytest.raises(ErpprovError) as err:
        parse_env(text, "proj/.env")
    assert err.value.location.file == "proj/.env"
    assert err.value.location.line == line
