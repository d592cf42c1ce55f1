"""Read back the tables of pykafka_c's _repr_html_ (tests/test_display.py,
tests/test_notebook.py)."""

import html
import re


def tables(text):
    """The HTML of each table in ``text``, in order."""
    return text.split("<table>")[1:]


def rows(table_html):
    """The unescaped cell texts of each body row of one table."""
    body = table_html.split("<tbody>", 1)[1].split("</tbody>", 1)[0]
    return [[html.unescape(c) for c in re.findall(r"<td[^>]*>(.*?)</td>", row)]
            for row in re.findall(r"<tr>(.*?)</tr>", body)]


def column(table_html, index):
    """One column of a table's rows."""
    return [r[index] for r in rows(table_html)]
