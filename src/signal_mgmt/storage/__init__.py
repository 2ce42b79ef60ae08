"""What every stage shares: engine and transaction, guarded transitions, idempotent
inserts, locks and the migrations runner."""
