"""Our own benchmark tasks, written the way users write project tasks — in prose — each with hidden tests.

The crew sees only `task`; `hidden` is run against the final code after the run and is never copied into the
run's folder. The hidden tests check the behaviour the task states (names, errors, edge cases), nothing more.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class OwnTask:
    id: str
    module: str
    task: str
    hidden: str   # pytest source; imports from the module by name


OWN_TASKS: tuple[OwnTask, ...] = (
    OwnTask(
        "own/roman", "roman.py",
        "Write roman.py with `to_roman(n)` that converts an integer from 1 to 3999 to a Roman numeral string, "
        "using subtractive notation (4 is IV, 9 is IX, 40 is XL). It raises ValueError for numbers outside "
        "1..3999. For example to_roman(1994) == 'MCMXCIV' and to_roman(3) == 'III'.",
        """
import pytest
from roman import to_roman

def test_values():
    assert to_roman(1) == "I"
    assert to_roman(4) == "IV"
    assert to_roman(9) == "IX"
    assert to_roman(14) == "XIV"
    assert to_roman(40) == "XL"
    assert to_roman(90) == "XC"
    assert to_roman(400) == "CD"
    assert to_roman(1994) == "MCMXCIV"
    assert to_roman(2024) == "MMXXIV"
    assert to_roman(3999) == "MMMCMXCIX"

@pytest.mark.parametrize("bad", [0, -1, 4000])
def test_out_of_range(bad):
    with pytest.raises(ValueError):
        to_roman(bad)
""",
    ),
    OwnTask(
        "own/slugify", "slugify_tool.py",
        "Write a Python module with a function `slugify(text)` that lowercases text, replaces every run of "
        "characters that are not letters or digits with a single hyphen, and strips hyphens from both ends.",
        """
from slugify_tool import slugify

def test_slugify():
    assert slugify("Hello World") == "hello-world"
    assert slugify("  Hello,   World!  ") == "hello-world"
    assert slugify("already-slugged") == "already-slugged"
    assert slugify("a--b__c") == "a-b-c"
    assert slugify("Python 3.12 Release") == "python-3-12-release"
    assert slugify("---") == ""
    assert slugify("") == ""
""",
    ),
    OwnTask(
        "own/intervals", "intervals.py",
        "Write intervals.py with `merge_intervals(intervals)` that takes a list of (start, end) pairs and returns "
        "a new list of tuples in which overlapping or touching intervals are merged, sorted by start. The input "
        "may be unsorted and may be empty. Example: merge_intervals([(1, 3), (2, 6), (8, 10)]) returns "
        "[(1, 6), (8, 10)].",
        """
from intervals import merge_intervals

def test_merge():
    assert merge_intervals([(1, 3), (2, 6), (8, 10)]) == [(1, 6), (8, 10)]
    assert merge_intervals([]) == []
    assert merge_intervals([(5, 7), (1, 2)]) == [(1, 2), (5, 7)]
    assert merge_intervals([(1, 4), (4, 5)]) == [(1, 5)]
    assert merge_intervals([(1, 10), (2, 3), (4, 5)]) == [(1, 10)]
    assert merge_intervals([(3, 4)]) == [(3, 4)]

def test_does_not_modify_input():
    data = [(2, 6), (1, 3)]
    merge_intervals(data)
    assert data == [(2, 6), (1, 3)]
""",
    ),
    OwnTask(
        "own/rle", "rle.py",
        "Write rle.py with two functions: `encode(s)` returns the run-length encoding of a string, each run "
        "written as its count followed by the character, and `decode(s)` reverses it. encode('aaabcc') == "
        "'3a1b2c' and decode('3a1b2c') == 'aaabcc'. Counts can have several digits (decode('12x') is twelve "
        "x's). The empty string encodes and decodes to the empty string.",
        """
from rle import decode, encode

def test_encode():
    assert encode("aaabcc") == "3a1b2c"
    assert encode("") == ""
    assert encode("a") == "1a"
    assert encode("x" * 12) == "12x"
    assert encode("abab") == "1a1b1a1b"

def test_decode():
    assert decode("3a1b2c") == "aaabcc"
    assert decode("") == ""
    assert decode("12x") == "x" * 12

def test_round_trip():
    for s in ["hello", "zzzzzzzzzzzzzzz", "aabbbcccc"]:
        assert decode(encode(s)) == s
""",
    ),
    OwnTask(
        "own/rpn", "rpn.py",
        "Write rpn.py with `evaluate_rpn(expression)` that evaluates an expression in reverse Polish notation: "
        "numbers and the operators + - * / separated by spaces, / being true division. It returns a float. "
        "It raises ValueError when the expression is malformed (too few operands, leftover operands, unknown "
        "tokens or an empty string). evaluate_rpn('3 4 + 2 *') == 14.0.",
        """
import pytest
from rpn import evaluate_rpn

def test_values():
    assert evaluate_rpn("3 4 + 2 *") == 14.0
    assert evaluate_rpn("5 1 2 + 4 * + 3 -") == 14.0
    assert evaluate_rpn("10 4 /") == 2.5
    assert evaluate_rpn("2 3 -") == -1.0
    assert evaluate_rpn("7") == 7.0

@pytest.mark.parametrize("bad", ["", "1 +", "1 2", "1 2 ^", "+"])
def test_malformed(bad):
    with pytest.raises(ValueError):
        evaluate_rpn(bad)
""",
    ),
    OwnTask(
        "own/chunks", "chunking.py",
        "Write chunking.py with `chunks(items, size)` that splits a list into consecutive lists of `size` items; "
        "the last one may be shorter. It raises ValueError when size is smaller than 1. "
        "chunks([1, 2, 3, 4, 5], 2) == [[1, 2], [3, 4], [5]] and chunks([], 3) == [].",
        """
import pytest
from chunking import chunks

def test_chunks():
    assert chunks([1, 2, 3, 4, 5], 2) == [[1, 2], [3, 4], [5]]
    assert chunks([], 3) == []
    assert chunks([1, 2, 3], 3) == [[1, 2, 3]]
    assert chunks([1, 2, 3], 5) == [[1, 2, 3]]
    assert chunks(list("abcd"), 1) == [["a"], ["b"], ["c"], ["d"]]

@pytest.mark.parametrize("bad", [0, -2])
def test_bad_size(bad):
    with pytest.raises(ValueError):
        chunks([1, 2], bad)
""",
    ),
    OwnTask(
        "own/isbn", "isbn.py",
        "Write isbn.py with `is_valid_isbn10(code)` that returns True when the string is a valid ISBN-10 and "
        "False otherwise. Hyphens may appear anywhere and are ignored; after removing them there must be exactly "
        "ten characters: nine digits and a last character that is a digit or X (meaning 10). It is valid when "
        "the sum of each digit times its weight (10 for the first, down to 1 for the last) is divisible by 11. "
        "is_valid_isbn10('3-598-21508-8') is True and is_valid_isbn10('3-598-21508-9') is False.",
        """
from isbn import is_valid_isbn10

def test_valid():
    assert is_valid_isbn10("3-598-21508-8") is True
    assert is_valid_isbn10("3598215088") is True
    assert is_valid_isbn10("3-598-21507-X") is True

def test_invalid():
    assert is_valid_isbn10("3-598-21508-9") is False
    assert is_valid_isbn10("3-598-2X507-9") is False
    assert is_valid_isbn10("3-598-21507-A") is False
    assert is_valid_isbn10("359821508") is False
    assert is_valid_isbn10("3598215088X") is False
    assert is_valid_isbn10("") is False
""",
    ),
    OwnTask(
        "own/temperature", "temperature.py",
        "Write temperature.py with `celsius_to_fahrenheit(c)` and `fahrenheit_to_celsius(f)`, each returning a "
        "float rounded to 2 decimals. Both raise ValueError for temperatures below absolute zero (-273.15 °C, "
        "which is -459.67 °F). celsius_to_fahrenheit(100) == 212.0 and fahrenheit_to_celsius(32) == 0.0.",
        """
import pytest
from temperature import celsius_to_fahrenheit, fahrenheit_to_celsius

def test_conversions():
    assert celsius_to_fahrenheit(100) == 212.0
    assert celsius_to_fahrenheit(0) == 32.0
    assert celsius_to_fahrenheit(-40) == -40.0
    assert celsius_to_fahrenheit(37.5) == 99.5
    assert fahrenheit_to_celsius(32) == 0.0
    assert fahrenheit_to_celsius(212) == 100.0
    assert fahrenheit_to_celsius(100) == 37.78

def test_absolute_zero():
    with pytest.raises(ValueError):
        celsius_to_fahrenheit(-300)
    with pytest.raises(ValueError):
        fahrenheit_to_celsius(-500)
""",
    ),
    OwnTask(
        "own/wordcount", "wordcount.py",
        "Write wordcount.py with `top_words(text, n)` that returns the n most frequent words of the text as a "
        "list of (word, count) tuples. Words are runs of letters, compared case-insensitively and returned in "
        "lower case. Ties are broken alphabetically. top_words('b a B c a b', 2) == [('b', 3), ('a', 2)].",
        """
from wordcount import top_words

def test_top_words():
    assert top_words("b a B c a b", 2) == [("b", 3), ("a", 2)]
    assert top_words("Hello, hello! World.", 5) == [("hello", 2), ("world", 1)]
    assert top_words("", 3) == []
    assert top_words("x y z", 2) == [("x", 1), ("y", 1)]
    assert top_words("one two two", 0) == []
""",
    ),
    OwnTask(
        "own/account", "account.py",
        "Write account.py with a class `Account` that starts with a balance of 0 (or an initial balance given to "
        "the constructor), with methods `deposit(amount)` and `withdraw(amount)` and a `balance` attribute. "
        "Both methods raise ValueError when the amount is not positive. Withdrawing more than the balance raises "
        "`InsufficientFunds`, an exception class defined in the same module (a subclass of Exception), and "
        "leaves the balance unchanged.",
        """
import pytest
from account import Account, InsufficientFunds

def test_deposit_withdraw():
    a = Account()
    assert a.balance == 0
    a.deposit(50)
    a.withdraw(20)
    assert a.balance == 30
    assert Account(100).balance == 100

def test_bad_amounts():
    a = Account(10)
    for bad in (0, -5):
        with pytest.raises(ValueError):
            a.deposit(bad)
        with pytest.raises(ValueError):
            a.withdraw(bad)

def test_overdraw():
    a = Account(10)
    with pytest.raises(InsufficientFunds):
        a.withdraw(11)
    assert a.balance == 10
    assert issubclass(InsufficientFunds, Exception)
""",
    ),
)
