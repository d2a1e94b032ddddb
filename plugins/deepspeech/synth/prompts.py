"""AN4-style prompts: spelled words, digit strings, phone numbers, zip codes, dates, numbers, control words.

A prompt is a sequence of tokens; a token is either a word spoken as itself or a word spelled letter by letter.
The transcript is exactly what is spoken: spelled letters separated by spaces, digits written as words.
"""
from __future__ import annotations

import random
from dataclasses import dataclass

CONTROL_WORDS = ("ENTER", "ERASE", "GO", "HELP", "NO", "REPEAT", "RUBOUT", "START", "STOP", "YES")

NAMES = (
    "ROBERT ROBERTS MARY JOHN SMITH JONES DAVID MICHAEL SARAH LINDA SUSAN JAMES THOMAS BROWN WILSON TAYLOR "
    "ANDERSON JACKSON WHITE HARRIS MARTIN GARCIA CLARK LEWIS WALKER HALL ALLEN YOUNG KING WRIGHT LOPEZ HILL "
    "SCOTT GREEN ADAMS BAKER NELSON CARTER MITCHELL PEREZ TURNER PHILLIPS CAMPBELL PARKER EVANS EDWARDS "
    "COLLINS STEWART MORRIS ROGERS REED COOK MORGAN BELL MURPHY BAILEY RIVERA COOPER RICHARDSON COX HOWARD "
    "WARD TORRES PETERSON GRAY RAMIREZ WATSON BROOKS KELLY SANDERS PRICE BENNETT WOOD BARNES ROSS HENDERSON "
    "COLEMAN JENKINS PERRY POWELL LONG PATTERSON HUGHES FLORES WASHINGTON BUTLER SIMMONS FOSTER GONZALES "
    "BRYANT ALEXANDER RUSSELL GRIFFIN DIAZ HAYES AMANDA ALICE ANNA BETTY CAROL DONNA EMILY FRANK GEORGE "
    "HELEN JACK KAREN KEVIN LAURA LISA MARK NANCY PAUL PETER QUINN RACHEL STEVEN VICTOR WENDY XAVIER "
    "YVONNE ZACHARY JOSEPH KATHY OLIVER QUENTIN UMBERTO VERA WALTER XENA YOLANDA ZOE PITTSBURGH CARNEGIE "
    "MELLON FORBES MURRAY WIGHTMAN BEECHWOOD SHADY NEGLEY ELLSWORTH FIFTH PENN BAUM CRAIG MOREWOOD "
    "BOULEVARD AVENUE STREET SQUARE HAZEL JUNIPER QUARTZ JAZZ FIZZ BOX WAX VEX JUMP QUICK ZEBRA OXYGEN "
    "KAYAK AQUA JOVIAL VIVID BUZZ FOX QUIZ ZIGZAG JOKE KEY HYDRA WYOMING IDAHO OHIO TEXAS UTAH IOWA MAINE "
    "CMU ABC XYZ IBM NASA USA FBI DEC"
).split()

DIGITS = ("ZERO", "ONE", "TWO", "THREE", "FOUR", "FIVE", "SIX", "SEVEN", "EIGHT", "NINE")
TEENS = ("TEN", "ELEVEN", "TWELVE", "THIRTEEN", "FOURTEEN", "FIFTEEN", "SIXTEEN", "SEVENTEEN", "EIGHTEEN",
         "NINETEEN")
TENS = ("", "", "TWENTY", "THIRTY", "FORTY", "FIFTY", "SIXTY", "SEVENTY", "EIGHTY", "NINETY")
MONTHS = ("JANUARY", "FEBRUARY", "MARCH", "APRIL", "MAY", "JUNE", "JULY", "AUGUST", "SEPTEMBER", "OCTOBER",
          "NOVEMBER", "DECEMBER")
ORDINAL_UNITS = ("", "FIRST", "SECOND", "THIRD", "FOURTH", "FIFTH", "SIXTH", "SEVENTH", "EIGHTH", "NINTH",
                 "TENTH", "ELEVENTH", "TWELFTH", "THIRTEENTH", "FOURTEENTH", "FIFTEENTH", "SIXTEENTH",
                 "SEVENTEENTH", "EIGHTEENTH", "NINETEENTH")
ORDINAL_TENS = {20: "TWENTIETH", 30: "THIRTIETH"}


@dataclass(frozen=True)
class Token:
    text: str
    spelled: bool = False


@dataclass(frozen=True)
class Prompt:
    tokens: tuple[Token, ...]
    kind: str

    @property
    def transcript(self) -> str:
        return " ".join(" ".join(t.text) if t.spelled else t.text for t in self.tokens)


def words(*ws: str) -> list[Token]:
    return [Token(w) for w in " ".join(ws).split()]


def below_hundred(n: int) -> str:
    if n < 10:
        return DIGITS[n]
    if n < 20:
        return TEENS[n - 10]
    tens, unit = divmod(n, 10)
    return TENS[tens] + ("" if unit == 0 else " " + DIGITS[unit])


def number_words(n: int) -> str:
    """Cardinal in AN4's style, without 'AND': 2409 -> TWO THOUSAND FOUR HUNDRED NINE."""
    if n == 0:
        return "ZERO"
    parts = []
    thousands, rest = divmod(n, 1000)
    if thousands:
        parts.append(number_words(thousands) + " THOUSAND")
    hundreds, rest = divmod(rest, 100)
    if hundreds:
        parts.append(DIGITS[hundreds] + " HUNDRED")
    if rest:
        parts.append(below_hundred(rest))
    return " ".join(parts)


def ordinal_words(n: int) -> str:
    if n < 20:
        return ORDINAL_UNITS[n]
    tens, unit = divmod(n, 10)
    if unit == 0:
        return ORDINAL_TENS[n]
    return TENS[tens] + " " + ORDINAL_UNITS[unit]


def digit_words(rng: random.Random, digits: str) -> str:
    return " ".join(("OH" if rng.random() < 0.6 else "ZERO") if d == "0" else DIGITS[int(d)] for d in digits)


def year_words(year: int) -> str:
    high, low = divmod(year, 100)
    if low == 0:
        return below_hundred(high) + " HUNDRED"
    low_words = below_hundred(low) if low >= 10 else "OH " + DIGITS[low]
    return below_hundred(high) + " " + low_words


def random_digits(rng: random.Random, n: int) -> str:
    return "".join(rng.choice("0123456789") for _ in range(n))


def spelled_prompt(rng: random.Random) -> Prompt:
    name = rng.choice(NAMES)
    tokens = [Token(name, spelled=True)]
    if rng.random() < 0.25:
        tokens.append(Token(rng.choice(NAMES), spelled=True))
    if rng.random() < 0.2:
        tokens.insert(0, Token(rng.choice(("ENTER", "REPEAT", "ERASE"))))
    return Prompt(tuple(tokens), "spelled")


def digit_string_prompt(rng: random.Random) -> Prompt:
    return Prompt(tuple(words(digit_words(rng, random_digits(rng, rng.randint(2, 8))))), "digits")


def phone_prompt(rng: random.Random) -> Prompt:
    digits = random_digits(rng, 10 if rng.random() < 0.4 else 7)
    return Prompt(tuple(words(digit_words(rng, digits))), "phone")


def zip_prompt(rng: random.Random) -> Prompt:
    return Prompt(tuple(words(digit_words(rng, random_digits(rng, 5)))), "zip")


def date_prompt(rng: random.Random) -> Prompt:
    month = rng.choice(MONTHS)
    day = ordinal_words(rng.randint(1, 31 if rng.random() < 0.9 else 30))
    style = rng.random()
    if style < 0.4:
        text = f"{month} {day}"
    elif style < 0.7:
        text = f"{month} {day} {year_words(rng.randint(1900, 1999))}"
    else:
        text = f"THE {day} OF {month}"
    return Prompt(tuple(words(text)), "date")


def number_prompt(rng: random.Random) -> Prompt:
    scale = rng.random()
    n = rng.randint(0, 99) if scale < 0.3 else rng.randint(100, 999) if scale < 0.6 else rng.randint(1000, 99999)
    return Prompt(tuple(words(number_words(n))), "number")


def control_prompt(rng: random.Random) -> Prompt:
    ws = [rng.choice(CONTROL_WORDS)]
    roll = rng.random()
    if roll < 0.3:
        ws.append(rng.choice(CONTROL_WORDS))
    elif roll < 0.55:
        ws.append(digit_words(rng, random_digits(rng, rng.randint(1, 3))))
    return Prompt(tuple(words(*ws)), "control")


PROMPT_MAKERS = (
    (spelled_prompt, 0.32),
    (digit_string_prompt, 0.14),
    (phone_prompt, 0.1),
    (zip_prompt, 0.07),
    (date_prompt, 0.1),
    (number_prompt, 0.12),
    (control_prompt, 0.15),
)


def random_prompt(rng: random.Random) -> Prompt:
    makers, weights = zip(*PROMPT_MAKERS)
    return rng.choices(makers, weights=weights, k=1)[0](rng)
