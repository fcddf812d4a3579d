"""The fault soak of issue 16: simulated residents served by the real terminal core in a
child process that is killed with SIGKILL at random instants, against the platform simulator
in its own process and the simulated devices whose state survives the kill, under every
fault at once; then a settle phase without faults and an automatic reconciliation of the
journal, the platform's ledger, the cards and the vouchers (docs/transactions.md, "Fault
soak"). Harness code: it lives with the tests and never ships to a terminal."""
