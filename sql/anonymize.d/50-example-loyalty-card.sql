-- anonymize.d/50-example-loyalty-card.sql — example extension for a custom module's table.
--
-- A custom module `x_loyalty` keeps a card per customer in table x_loyalty_card with the holder's
-- name, e-mail, phone and a free-text note. Extensions run after anonymize.sql in the same psql
-- session, in file-name order; the helpers of lib/guards.sql are available. Declare one rule per
-- column (an SQL expression over the row, keyed by id) and apply them with one UPDATE per table.
-- Absent tables or columns are skipped, so this file is harmless on databases without the module.
\set ON_ERROR_STOP 1
BEGIN;
\ir ../lib/guards.sql
\o /dev/null
SELECT pg_temp.odoo_anon_rule('x_loyalty_card', 'holder_name', $$'Holder ' || id$$);
SELECT pg_temp.odoo_anon_rule('x_loyalty_card', 'holder_email', $$'card' || id || '@example.invalid'$$);
SELECT pg_temp.odoo_anon_rule('x_loyalty_card', 'holder_phone', $$'+1' || lpad(id::text, 10, '0')$$);
SELECT pg_temp.odoo_anon_rule('x_loyalty_card', 'note', 'NULL', false);   -- free text: cleared
\o
SELECT 'x_loyalty_card anonymized' AS step, pg_temp.odoo_anonymize_table('x_loyalty_card') AS rows;
-- Rows that must go entirely are deleted with a guard:
-- SELECT pg_temp.odoo_exec_if('x_loyalty_scan_log', NULL, 'DELETE FROM x_loyalty_scan_log');
COMMIT;
