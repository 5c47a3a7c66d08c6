"""The SQL loader: every file in sql/ loads, and a malformed file stops start-up by name."""

import pytest

from service.queries import SQL_DIR, Queries, SQLLoadError


def _write(directory, name: str, text: str):
    (directory / name).write_text(text)
    return directory


def test_project_statements_all_load_with_their_comment():
    queries = Queries()

    names = {query.name for query in queries}

    assert names == {path.stem for path in SQL_DIR.glob("*.sql")}
    assert all(query.doc for query in queries)


def test_statement_is_reachable_by_its_file_name():
    queries = Queries()

    query = queries.get_print

    assert query.name == "get_print"
    assert query.parameter_count == 2
    assert query.doc == (
        "Print $2 of user $1 with its frames, when it is live, and the user's data version as"
        " of the same snapshot: the version the print is exactly as of (0 when nothing ever"
        " changed)."
    )


def test_unknown_statement_name_raises_attribute_error_naming_it():
    with pytest.raises(AttributeError, match="no statement named 'get_prnt'"):
        Queries().get_prnt  # noqa: B018


def test_empty_file_is_refused_naming_the_file(tmp_path):
    _write(tmp_path, "empty.sql", "\n\n")

    with pytest.raises(SQLLoadError, match=r"empty\.sql: is empty"):
        Queries(tmp_path)


def test_file_without_leading_comment_is_refused(tmp_path):
    _write(tmp_path, "bare.sql", "SELECT 1\n")

    with pytest.raises(SQLLoadError, match=r"bare\.sql:1: must open with a -- comment"):
        Queries(tmp_path)


def test_file_with_two_statements_is_refused_with_the_line(tmp_path):
    _write(tmp_path, "two.sql", "-- Two.\nSELECT 1;\nSELECT 2;\n")

    with pytest.raises(SQLLoadError, match=r"two\.sql:2: holds more than one statement"):
        Queries(tmp_path)


def test_semicolon_inside_a_string_is_not_a_second_statement(tmp_path):
    _write(tmp_path, "one.sql", "-- One.\nSELECT 'a;b' AS text;\n")

    query = Queries(tmp_path).one

    assert query.text == "-- One.\nSELECT 'a;b' AS text"


def test_parameters_with_a_gap_are_refused(tmp_path):
    _write(tmp_path, "gap.sql", "-- Gap.\nSELECT $1, $3\n")

    with pytest.raises(SQLLoadError, match=r"gap\.sql: parameters must be \$1\.\.\$n"):
        Queries(tmp_path)


def test_directory_without_sql_files_is_refused(tmp_path):
    with pytest.raises(SQLLoadError, match=r"holds no \.sql file"):
        Queries(tmp_path)
