"""A searched cell's true accuracy and rank in a table (archsearch.oneshot.ranking), without
retraining: the table's row, or an earlier answer re-ranked against a grown table."""

from pathlib import Path

import pytest

from archsearch.tables.fmnist import load_fmnist_table

TABLE = Path(__file__).resolve().parents[1] / "data" / "fmnist_nb201.csv"


@pytest.mark.skipif(not TABLE.is_file(), reason="the committed Fashion-MNIST table is absent")
def test_table_truth_reads_the_row_or_reranks_a_known_answer():
    from archsearch.oneshot.ranking import table_truth

    table = load_fmnist_table(TABLE)
    valid = table.column("fmnist_valid")
    best = int(valid.argmax())
    arch = table.architectures()[best]
    truth = table_truth(arch, table)
    assert truth["source"] == "table" and truth["valid"] == valid[best]
    assert truth["valid_rank"] == {"rows_better": 0, "top_percent": round(100 / len(table), 2)}
    # a cell the table lacks, retrained earlier: its figures are kept and re-ranked
    outside = next(a for a in (table.space.from_index(i) for i in range(5**6)) if a not in table)
    known = {"source": "retrained (seed 1, 9 s)", "valid": 0.0, "test": 100.0}
    again = table_truth(outside, table, known=known)
    assert again["source"] == known["source"]
    assert again["valid_rank"]["rows_better"] == len(table)
    assert again["test_rank"]["rows_better"] == 0
    # the table's row wins over a stale answer for a cell the table now holds
    assert table_truth(arch, table, known=known)["valid"] == valid[best]
