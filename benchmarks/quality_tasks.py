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
    # Added 2026-12-07 (issue #26): classes and modules of several functions, as users write them; one
    # states no example (the case where a verdict can only rest on model-written tests).
    OwnTask(
        "own/stack", "minstack.py",
        "Write minstack.py with a class `MinStack`: a stack that also knows its smallest element. "
        "`push(x)` puts x on top; `pop()` removes and returns the top element; `top()` returns it without "
        "removing it; `get_min()` returns the smallest element currently in the stack; `len()` of the stack "
        "is the number of elements. pop, top and get_min raise IndexError on an empty stack. For example, "
        "after s = MinStack(); s.push(3); s.push(1); s.push(2): s.get_min() == 1, s.pop() == 2, and after "
        "one more pop s.get_min() == 3.",
        """
import pytest
from minstack import MinStack

def test_min_follows_pops():
    s = MinStack()
    for x in (5, 3, 7, 3, 1):
        s.push(x)
    assert s.get_min() == 1 and len(s) == 5
    assert s.pop() == 1 and s.get_min() == 3
    assert s.pop() == 3 and s.get_min() == 3
    assert s.pop() == 7 and s.top() == 3 and s.get_min() == 3
    assert s.pop() == 3 and s.get_min() == 5 and len(s) == 1

def test_example():
    s = MinStack()
    s.push(3); s.push(1); s.push(2)
    assert s.get_min() == 1 and s.pop() == 2
    s.pop()
    assert s.get_min() == 3

def test_empty():
    s = MinStack()
    assert len(s) == 0
    for f in (s.pop, s.top, s.get_min):
        with pytest.raises(IndexError):
            f()
""",
    ),
    OwnTask(
        "own/gradebook", "gradebook.py",
        "Write gradebook.py with a class `Gradebook`. `add_grade(student, grade)` records a grade (a number "
        "from 0 to 100; anything else raises ValueError) for a student; a student may have many grades. "
        "`average(student)` returns the mean of the student's grades, rounded to 2 decimals, and raises "
        "KeyError for a student with no grades. `best_student()` returns the name of the student with the "
        "highest average (ties go to the name that sorts first) or None when there are no grades. "
        "`students()` returns the names in alphabetical order.",
        """
import pytest
from gradebook import Gradebook

def test_average_and_best():
    g = Gradebook()
    g.add_grade("bob", 80)
    g.add_grade("bob", 91)
    g.add_grade("amy", 85.5)
    assert g.average("bob") == 85.5
    assert g.average("amy") == 85.5
    assert g.best_student() == "amy"
    g.add_grade("cid", 100)
    assert g.best_student() == "cid"
    assert g.students() == ["amy", "bob", "cid"]

def test_rounding():
    g = Gradebook()
    for x in (1, 2, 2):
        g.add_grade("x", x)
    assert g.average("x") == 1.67

def test_errors():
    g = Gradebook()
    assert g.best_student() is None and g.students() == []
    with pytest.raises(KeyError):
        g.average("nobody")
    for bad in (-1, 101):
        with pytest.raises(ValueError):
            g.add_grade("x", bad)
""",
    ),
    OwnTask(
        "own/shoppingcart", "cart.py",
        "Write cart.py with a class `Cart`. `add(name, price, qty=1)` adds qty units of an item at a unit "
        "price (adding an item already in the cart adds to its quantity and keeps the first price); "
        "`remove(name, qty=1)` takes units away, and the item disappears when its quantity reaches 0 (removing "
        "an item that is not in the cart raises KeyError); `total()` is the sum of price times quantity, "
        "rounded to 2 decimals; `apply_discount(percent)` lowers every later total by that percent (0 to "
        "100, else ValueError). Example: after add('pen', 1.5, 2) and add('book', 10), total() returns 13.0.",
        """
import pytest
from cart import Cart

def test_total_and_remove():
    c = Cart()
    c.add("pen", 1.5, 2)
    c.add("book", 10)
    assert c.total() == 13.0
    c.add("pen", 9.99)
    assert c.total() == 14.5
    c.remove("pen", 3)
    assert c.total() == 10.0
    with pytest.raises(KeyError):
        c.remove("pen")

def test_discount():
    c = Cart()
    c.add("a", 20)
    c.apply_discount(25)
    assert c.total() == 15.0
    for bad in (-1, 101):
        with pytest.raises(ValueError):
            c.apply_discount(bad)

def test_missing():
    with pytest.raises(KeyError):
        Cart().remove("x")
    assert Cart().total() == 0
""",
    ),
    OwnTask(
        "own/textstats", "textstats.py",
        "Write textstats.py with three functions. `words(text)` returns the words of text in lower case, "
        "where a word is a run of letters or apostrophes (so \"Don't stop!\" gives [\"don't\", \"stop\"]). "
        "`top_words(text, n)` returns the n most frequent words as (word, count) pairs, most frequent first, "
        "ties in alphabetical order. `average_word_length(text)` returns the mean length of the words rounded "
        "to 2 decimals, or 0.0 for a text without words.",
        """
from textstats import words, top_words, average_word_length

def test_words():
    assert words("Don't stop!") == ["don't", "stop"]
    assert words("A b, A.") == ["a", "b", "a"]
    assert words("123 !!") == []

def test_top_words():
    assert top_words("b a b c a b", 2) == [("b", 3), ("a", 2)]
    assert top_words("x y", 5) == [("x", 1), ("y", 1)]
    assert top_words("", 3) == []

def test_average():
    assert average_word_length("ab abcd") == 3.0
    assert average_word_length("a bb bb") == 1.67
    assert average_word_length("...") == 0.0
""",
    ),
    OwnTask(
        "own/vectors", "vectors.py",
        "Write vectors.py with functions on vectors given as lists of numbers: `add(u, v)` and `dot(u, v)` "
        "(both raise ValueError when the lengths differ), `norm(v)` (the Euclidean length) and "
        "`normalize(v)` (v divided by its norm; raises ValueError for the zero vector). Example: dot([1, 2], "
        "[3, 4]) == 11 and norm([3, 4]) == 5.0.",
        """
import math
import pytest
from vectors import add, dot, norm, normalize

def test_values():
    assert add([1, 2], [3, 4]) == [4, 6]
    assert dot([1, 2], [3, 4]) == 11
    assert norm([3, 4]) == 5.0
    assert normalize([0, 2]) == [0.0, 1.0]
    n = normalize([1, 1, 1])
    assert all(math.isclose(x, 1 / math.sqrt(3)) for x in n)
    assert add([], []) == [] and dot([], []) == 0

def test_errors():
    with pytest.raises(ValueError):
        add([1], [1, 2])
    with pytest.raises(ValueError):
        dot([1, 2, 3], [1])
    with pytest.raises(ValueError):
        normalize([0, 0])
""",
    ),
    OwnTask(
        "own/dedupe", "dedupe.py",
        "Write dedupe.py with `dedupe(items, key=None)`: it returns a new list with the items in their "
        "original order, keeping only the first item of each group of equal items. When key is given, two "
        "items are equal when key(item) is equal. The items may be unhashable (lists or dicts), and the "
        "input list is never changed.",
        """
from dedupe import dedupe

def test_order_and_first():
    assert dedupe([3, 1, 3, 2, 1]) == [3, 1, 2]
    assert dedupe([]) == []

def test_key():
    assert dedupe(["a", "B", "A", "b"], key=str.lower) == ["a", "B"]
    assert dedupe([{"id": 1, "v": "x"}, {"id": 1, "v": "y"}], key=lambda d: d["id"]) == [{"id": 1, "v": "x"}]

def test_unhashable_and_unchanged():
    data = [[1], [2], [1]]
    assert dedupe(data) == [[1], [2]]
    assert data == [[1], [2], [1]]
""",
    ),
    OwnTask(
        "own/duration", "duration.py",
        "Write duration.py with two functions. `parse_duration(text)` reads a duration such as '1h30m', '45s' "
        "or '2h5s' — hours `h`, minutes `m` and seconds `s`, each a whole number, in that order, each at most "
        "once, at least one present — and returns the total number of seconds; anything else (an empty string, "
        "'1x', '5m1h') raises ValueError. `format_duration(seconds)` does the reverse for a non-negative "
        "integer, leaving out the parts that are zero: format_duration(5400) == '1h30m' and "
        "format_duration(0) == '0s'. For example parse_duration('1h30m') == 5400 and parse_duration('90s') == 90.",
        """
import pytest
from duration import format_duration, parse_duration

def test_parse():
    assert parse_duration("1h30m") == 5400
    assert parse_duration("45s") == 45
    assert parse_duration("2h5s") == 7205
    assert parse_duration("90s") == 90
    assert parse_duration("10m") == 600

@pytest.mark.parametrize("bad", ["", "1x", "5m1h", "h", "1h1h"])
def test_parse_bad(bad):
    with pytest.raises(ValueError):
        parse_duration(bad)

def test_format():
    assert format_duration(5400) == "1h30m"
    assert format_duration(0) == "0s"
    assert format_duration(45) == "45s"
    assert format_duration(3661) == "1h1m1s"
    assert format_duration(7200) == "2h"

def test_round_trip():
    for s in (1, 59, 60, 61, 3599, 3600, 86399):
        assert parse_duration(format_duration(s)) == s
""",
    ),
    OwnTask(
        "own/boundedqueue", "boundedqueue.py",
        "Write boundedqueue.py with a class `BoundedQueue(capacity)`: a first-in first-out queue that holds at "
        "most `capacity` items (a positive integer; anything else raises ValueError). Its methods: `push(item)` "
        "adds an item at the back and raises OverflowError when the queue is full; `pop()` removes and returns "
        "the front item and raises IndexError when the queue is empty; `peek()` returns the front item without "
        "removing it (IndexError when empty); `is_full()` and `is_empty()` return booleans; and `len(q)` is "
        "the number of items. For example, after q = BoundedQueue(2); q.push(1); q.push(2), q.is_full() is "
        "True and q.pop() returns 1.",
        """
import pytest
from boundedqueue import BoundedQueue

def test_fifo():
    q = BoundedQueue(3)
    q.push("a")
    q.push("b")
    q.push("c")
    assert len(q) == 3 and q.is_full() and not q.is_empty()
    assert q.peek() == "a"
    assert [q.pop(), q.pop(), q.pop()] == ["a", "b", "c"]
    assert q.is_empty() and len(q) == 0

def test_overflow_and_reuse():
    q = BoundedQueue(1)
    q.push(1)
    with pytest.raises(OverflowError):
        q.push(2)
    assert q.pop() == 1
    q.push(3)
    assert q.peek() == 3

def test_empty():
    q = BoundedQueue(2)
    with pytest.raises(IndexError):
        q.pop()
    with pytest.raises(IndexError):
        q.peek()

@pytest.mark.parametrize("bad", [0, -1, 1.5, "2"])
def test_bad_capacity(bad):
    with pytest.raises(ValueError):
        BoundedQueue(bad)
""",
    ),
    OwnTask(
        "own/casing", "casing.py",
        "Write casing.py with `to_snake(name)` and `to_camel(name)`. `to_snake` turns a camelCase or "
        "PascalCase identifier into snake_case: each capital letter starts a new lower-case word, except that a "
        "run of capitals (an acronym) stays one word, so to_snake('parseHTTPResponse') == 'parse_http_response' "
        "and to_snake('UserID') == 'user_id'. `to_camel` turns snake_case into camelCase: "
        "to_camel('parse_http_response') == 'parseHttpResponse'; leading, trailing and doubled underscores are "
        "ignored. For example to_snake('helloWorld') == 'hello_world' and to_camel('hello_world') == 'helloWorld'.",
        """
from casing import to_camel, to_snake

def test_snake():
    assert to_snake("helloWorld") == "hello_world"
    assert to_snake("HelloWorld") == "hello_world"
    assert to_snake("parseHTTPResponse") == "parse_http_response"
    assert to_snake("UserID") == "user_id"
    assert to_snake("simple") == "simple"
    assert to_snake("getX") == "get_x"

def test_camel():
    assert to_camel("hello_world") == "helloWorld"
    assert to_camel("parse_http_response") == "parseHttpResponse"
    assert to_camel("_private__name_") == "privateName"
    assert to_camel("single") == "single"
""",
    ),
    OwnTask(
        "own/runningmedian", "median.py",
        "Write median.py with `running_median(values)`: given a list of numbers, it returns a list of the same "
        "length whose i-th item is the median of the first i+1 values — the middle value when their count is "
        "odd, the mean of the two middle values when it is even. An empty list gives an empty list, and the "
        "input list is never changed.",
        """
from median import running_median

def test_running():
    assert running_median([5, 15, 1, 3]) == [5, 10, 5, 4]
    assert running_median([]) == []
    assert running_median([2]) == [2]
    assert running_median([1, 2, 3, 4, 5]) == [1, 1.5, 2, 2.5, 3]

def test_unchanged():
    data = [3, 1, 2]
    running_median(data)
    assert data == [3, 1, 2]
""",
    ),
)
