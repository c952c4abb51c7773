"""privacy: one caller's data of one account, exported or erased (APPI requests)."""
