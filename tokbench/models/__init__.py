"""Reference implementations of tokenizer architectures whose released checkpoints tokbench loads itself
(rather than through a third-party package), written from their specifications."""
