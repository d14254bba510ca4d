-- pg_rfm 0.1.0 -> 0.2.0
--
-- 0.2.0 changes the library only: rfm_train and rfm_model_import check the right to store
-- models before doing any work. The SQL objects are the same as in 0.1.0, so there is
-- nothing to alter here; the script exists so that ALTER EXTENSION pg_rfm UPDATE moves
-- installed databases to 0.2.0 (tests/e2e/test_upgrade.py checks that models keep
-- assigning identically and that the upgraded schema equals a fresh 0.2.0 install).
--
-- Released scripts are never edited: later changes go into a new pg_rfm--0.2.0--x.sql.
\echo Use "ALTER EXTENSION pg_rfm UPDATE TO '0.2.0'" to load this file. \quit
