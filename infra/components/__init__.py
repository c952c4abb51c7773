"""One construct per concern; the stack (infra/stack.py) only composes and wires them."""
