"""How an apply's number rows are cut into DynamoDB transactions (admin.store.transaction_chunks):
at most 99 items (the account row joins the last) and under DynamoDB's 4 MB per transaction."""

from __future__ import annotations

from admin.store import MAX_TRANSACTION_BYTES, MAX_TRANSACTION_ITEMS, transaction_chunks


def row(number: int, flow_bytes: int) -> dict[str, object]:
    return {"number": f"+8150{number:08d}", "account": "acme", "routing": {"flow": "x" * flow_bytes}}


def test_small_rows_go_99_to_a_transaction_in_order():
    ops = [("delete", f"+8150{i:08d}") for i in range(50)] + [("put", row(i, 100)) for i in range(200)]
    chunks = transaction_chunks(ops)
    assert [len(c) for c in chunks] == [99, 99, 52]
    assert [op for chunk in chunks for op in chunk] == ops


def test_rows_carrying_a_large_flow_are_cut_by_size_before_dynamodb_refuses_the_transaction():
    # Given 99 rows each carrying a 43 KB flow (40 ring-group targets): 4.3 MB in one transaction
    ops = [("put", row(i, 43_000)) for i in range(99)]
    # When they are cut into transactions
    chunks = transaction_chunks(ops)
    # Then none holds more than the byte budget, and every row is in one of them, in order
    assert len(chunks) == 2
    assert all(sum(len(str(v)) for _, v in chunk) <= MAX_TRANSACTION_BYTES for chunk in chunks)
    assert all(len(chunk) <= MAX_TRANSACTION_ITEMS - 1 for chunk in chunks)
    assert [op for chunk in chunks for op in chunk] == ops


def test_nothing_to_write_is_one_empty_transaction_for_the_account_row():
    assert transaction_chunks([]) == [[]]
