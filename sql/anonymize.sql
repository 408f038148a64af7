-- anonymize.sql — replace the personal data of an Odoo 16/17/18 database copy (run after neutralize.sql).
--
-- Explicit rules for the known tables (below), then every other personal column found from Odoo's own
-- metadata (ir_model_fields: e-mail/phone/name/address/bank/VAT fields, free text of person-related
-- models; lib/anonymize-discovery.sql); texts that are kept (system notifications, mail templates,
-- views, x_ tables without ORM metadata) are scrubbed of addresses, numbers and the people's names.
-- IBANs and VAT numbers are replaced by checksum-valid, unique ones (lib/pii.sql). The output ends
-- with a column report (`column|table.column|rule`, no values) and the counts.
--
-- Every row, no company filter: most partners have company_id NULL. Replacements are deterministic and
-- keyed by the row id ('Partner 123', 'partner123@example.invalid', '+10000000123'), so they are unique
-- where Odoo wants uniqueness and a second run changes nothing. Shape is kept: NULL stays NULL, a
-- company stays a company, translated (jsonb) values keep their languages. Tables or columns this
-- database does not have are skipped. Everything runs in one transaction.
--
--   psql -v ON_ERROR_STOP=1 -d DB -f sql/neutralize.sql -f sql/anonymize.sql [-f sql/anonymize.d/*.sql]
--
-- Variables (all optional, each with a safe default):
--   uat_password_hash  not used here any more: neutralize.sql gives it to the kept logins; the
--                      other users' passwords are removed (here too, in case this runs alone).
--   keep_logins        comma-separated logins left as they are (default 'admin'; neutralize.sql hands
--                      on its effective list, admin's login included); logins starting
--                      with '__' (e.g. __system__) are always kept. Their partners are anonymized.
--   drop_attachments   'on' deletes the attachments of personal records (partners, users, employees,
--                      bank accounts, messages) instead of only renaming them (default 'off'); the
--                      filestore copy then skips the files no attachment refers to.
\set ON_ERROR_STOP 1
\if :{?uat_password_hash}
\else
  \set uat_password_hash ''
\endif
\if :{?keep_logins}
\else
  \set keep_logins 'admin'
\endif
\if :{?drop_attachments}
\else
  \set drop_attachments 'off'
\endif
SET client_min_messages = warning;
BEGIN;
-- one transaction; its commit need not wait for the WAL flush (a crash before it = a refresh to redo)
SET LOCAL synchronous_commit = off;
SET LOCAL odoo_mta.uat_password_hash = :'uat_password_hash';
SET LOCAL odoo_mta.keep_logins = :'keep_logins';
SET LOCAL odoo_mta.drop_attachments = :'drop_attachments';
\ir lib/guards.sql
\o /dev/null
\ir lib/pii.sql
\ir lib/anonymize-discovery.sql
\o

CREATE TEMP TABLE IF NOT EXISTS odoo_anonymize_log (step text, rows bigint) ON COMMIT DROP;

-- 1. Secrets and traces that are simply deleted ----------------------------------------------------
DO $deletes$
DECLARE t text; n bigint; m bigint;
BEGIN
  FOREACH t IN ARRAY ARRAY[
    'res_users_apikeys',          -- API keys (hashes; still usable against UAT if copied)
    'auth_totp_device',           -- "trusted device" keys of 2FA
    'auth_totp_rate_limit_log',   -- IPs
    'res_users_log',              -- login history
    'res_device_log',             -- 18+: IP, city, browser of every session
    'mail_mail',                  -- outgoing mail queue (bodies, recipients, headers)
    'mail_partner_device',        -- web push endpoints
    'bus_bus'                     -- pending notifications (message payloads)
  ] LOOP
    n := pg_temp.odoo_exec_if(t, NULL, format('DELETE FROM %I', t));
    INSERT INTO odoo_anonymize_log VALUES (t || ' deleted', n);
  END LOOP;

  IF current_setting('odoo_mta.drop_attachments') IN ('on', 'true', '1', 'yes') AND pg_temp.odoo_has_table('ir_attachment') THEN
    DELETE FROM ir_attachment
     WHERE res_model IN ('res.partner', 'res.users', 'hr.employee', 'res.partner.bank', 'mail.message', 'mail.mail',
                         'mail.channel', 'discuss.channel', 'hr.employee.public', 'mail.compose.message');
    GET DIAGNOSTICS n = ROW_COUNT;
    IF pg_temp.odoo_has_table('message_attachment_rel') THEN
      DELETE FROM ir_attachment WHERE id IN (SELECT attachment_id FROM message_attachment_rel);
      GET DIAGNOSTICS m = ROW_COUNT;
      n := n + m;
    END IF;
    INSERT INTO odoo_anonymize_log VALUES ('attachments of personal records deleted', n);
  END IF;
END
$deletes$;

-- 2. Replacement rules (table, column, expression) ------------------------------------------------
TRUNCATE odoo_anon_rule;
\o /dev/null
-- res_partner: every contact, person or company, whatever its company
SELECT pg_temp.odoo_anon_rule('res_partner', 'name', $$CASE WHEN is_company THEN 'Company ' ELSE 'Partner ' END || id$$, true, '{is_company}');
SELECT pg_temp.odoo_anon_rule('res_partner', 'display_name', $$CASE WHEN is_company THEN 'Company ' ELSE 'Partner ' END || id$$, true, '{is_company}');  -- 16
SELECT pg_temp.odoo_anon_rule('res_partner', 'complete_name', $$CASE WHEN is_company THEN 'Company ' ELSE 'Partner ' END || id$$, true, '{is_company}'); -- 17+
SELECT pg_temp.odoo_anon_rule('res_partner', c, $$'partner' || id || '@example.invalid'$$) FROM unnest(ARRAY['email', 'email_normalized']) c;
SELECT pg_temp.odoo_anon_rule('res_partner', c, $$'+1' || lpad(id::text, 10, '0')$$) FROM unnest(ARRAY['phone', 'mobile', 'phone_sanitized']) c;
SELECT pg_temp.odoo_anon_rule('res_partner', 'street', $$id || ' Anonymous Street'$$);
SELECT pg_temp.odoo_anon_rule('res_partner', 'street2', $$'Unit ' || id$$);
SELECT pg_temp.odoo_anon_rule('res_partner', 'zip', $$lpad((id % 100000)::text, 5, '0')$$);
SELECT pg_temp.odoo_anon_rule('res_partner', 'city', $$'Anytown'$$);
SELECT pg_temp.odoo_anon_rule('res_partner', 'vat', $$pg_temp.odoo_fake_vat(id)$$);   -- checksum-valid, unique (lib/pii.sql)
SELECT pg_temp.odoo_anon_rule('res_partner', 'contact_address_complete', $$id || ' Anonymous Street, ' || lpad((id % 100000)::text, 5, '0') || ' Anytown'$$);
SELECT pg_temp.odoo_anon_rule('res_partner', 'website', $$'https://partner' || id || '.example.invalid'$$);
SELECT pg_temp.odoo_anon_rule('res_partner', 'comment', $$'<p>Comment ' || id || '</p>'$$);
SELECT pg_temp.odoo_anon_rule('res_partner', 'function', $$'Function ' || id$$);
SELECT pg_temp.odoo_anon_rule('res_partner', 'company_name', $$'Company ' || coalesce(parent_id, id)$$, true, '{parent_id}');
SELECT pg_temp.odoo_anon_rule('res_partner', 'commercial_company_name', $$'Company ' || coalesce(commercial_partner_id, id)$$, true, '{commercial_partner_id}');
SELECT pg_temp.odoo_anon_rule('res_partner', c, '0') FROM unnest(ARRAY['partner_latitude', 'partner_longitude']) c;
SELECT pg_temp.odoo_anon_rule('res_partner', 'ref', $$'REF' || id$$);
SELECT pg_temp.odoo_anon_rule('res_partner', 'barcode', $$'PARTNER' || id$$);     -- 18: company-dependent jsonb
SELECT pg_temp.odoo_anon_rule('res_partner', 'ocn_token', 'NULL', false);
SELECT pg_temp.odoo_anon_rule('res_partner', c, 'NULL', false) FROM unnest(ARRAY['signup_token', 'signup_type', 'signup_expiration']) c; -- 16/17
-- 16/17: company-dependent values live in ir_property
SELECT pg_temp.odoo_anon_rule('ir_property', 'value_text',
  $$CASE WHEN name = 'barcode' AND res_id LIKE 'res.partner,%' THEN 'PARTNER' || split_part(res_id, ',', 2) ELSE value_text END$$, true, '{name,res_id}');

SELECT pg_temp.odoo_anon_rule('res_partner_bank', c, $$pg_temp.odoo_fake_iban(id)$$) FROM unnest(ARRAY['acc_number', 'sanitized_acc_number']) c;
SELECT pg_temp.odoo_anon_rule('res_partner_bank', 'acc_holder_name', $$'Holder ' || id$$);

-- res_company: the same names as its partner (Company <partner id>), unique like Odoo wants
SELECT pg_temp.odoo_anon_rule('res_company', 'name', $$'Company ' || partner_id$$, true, '{partner_id}');
SELECT pg_temp.odoo_anon_rule('res_company', 'email', $$'partner' || partner_id || '@example.invalid'$$, true, '{partner_id}');
SELECT pg_temp.odoo_anon_rule('res_company', c, $$'+1' || lpad(partner_id::text, 10, '0')$$, true, '{partner_id}') FROM unnest(ARRAY['phone', 'mobile']) c;
SELECT pg_temp.odoo_anon_rule('res_company', c, $$'Company ' || partner_id$$, true, '{partner_id}') FROM unnest(ARRAY['report_header', 'report_footer']) c;
SELECT pg_temp.odoo_anon_rule('res_company', 'company_details', $$'<p>Company ' || partner_id || '</p>'$$, true, '{partner_id}');
SELECT pg_temp.odoo_anon_rule('res_company', 'company_registry', $$'REG' || id$$);
SELECT pg_temp.odoo_anon_rule('res_company', 'vat', $$pg_temp.odoo_fake_vat(partner_id)$$, true, '{partner_id}');
SELECT pg_temp.odoo_anon_rule('res_company', 'street', $$partner_id || ' Anonymous Street'$$, true, '{partner_id}');

-- res_users: logins (except the keep-list), one known password, no 2FA secret
SELECT pg_temp.odoo_anon_rule('res_users', 'login',
  $$CASE WHEN login = ANY (string_to_array(current_setting('odoo_mta.keep_logins'), ',')) OR login LIKE '\_\_%' THEN login
         ELSE 'user' || id || '@example.invalid' END$$);
-- passwords: neutralize.sql gives the kept logins the UAT password (uat_password_hash); here, run
-- alone or not, nobody else keeps one
SELECT pg_temp.odoo_anon_rule('res_users', 'password',
  $$CASE WHEN login = ANY (string_to_array(current_setting('odoo_mta.keep_logins'), ',')) OR login LIKE '\_\_%' THEN password END$$, false, '{login}');
SELECT pg_temp.odoo_anon_rule('res_users', 'signature', $$'<p>User ' || id || '</p>'$$);
SELECT pg_temp.odoo_anon_rule('res_users', c, 'NULL', false) FROM unnest(ARRAY['totp_secret', 'oauth_access_token']) c;
SELECT pg_temp.odoo_anon_rule('res_users', 'oauth_uid', $$'oauth' || id$$);

-- messages: bodies, addresses and tracked values
SELECT pg_temp.odoo_anon_rule('mail_message', 'subject', $$'Subject ' || id$$);
-- bodies: a notification Odoo wrote itself (message_type 'notification', no author or OdooBot: stage
-- changes, "Invoice validated", tracking-only messages) is kept, with the personal data a person would
-- recognise in it scrubbed (addresses, phone numbers, IBANs, VATs, names of the people of this database);
-- every comment, e-mail and automated mail to a customer is replaced
SELECT pg_temp.odoo_anon_rule('mail_message', 'body',
  $$CASE WHEN message_type IN ('notification', 'user_notification') AND coalesce(author_id, 2) = 2 THEN pg_temp.odoo_scrub(body)
         ELSE '<p>Message ' || id || '</p>' END$$, true, '{message_type,author_id}');
SELECT pg_temp.odoo_anon_rule('mail_message', 'email_from', $$'partner' || coalesce(author_id, 0) || '@example.invalid'$$, true, '{author_id}');
SELECT pg_temp.odoo_anon_rule('mail_message', 'reply_to', $$'reply' || id || '@example.invalid'$$);
SELECT pg_temp.odoo_anon_rule('mail_message', 'record_name', $$'Record ' || coalesce(res_id, id)$$, true, '{res_id}');
SELECT pg_temp.odoo_anon_rule('mail_message', 'message_id', $$'<message' || id || '@example.invalid>'$$);
-- tracking values: replaced, except those of a non-personal field (see the discovery below)
SELECT pg_temp.odoo_anon_rule('mail_tracking_value', c, $$'Value ' || id$$)
  FROM unnest(ARRAY['old_value_char', 'new_value_char', 'old_value_text', 'new_value_text']) c;
SELECT pg_temp.odoo_anon_rule('mail_notification', 'failure_reason', $$'Failure ' || id$$);
SELECT pg_temp.odoo_anon_rule('mail_activity', 'summary', $$'Activity ' || id$$);
SELECT pg_temp.odoo_anon_rule('mail_activity', 'note', $$'<p>Activity ' || id || '</p>'$$);
SELECT pg_temp.odoo_anon_rule(t, 'name', $$CASE WHEN channel_type IN ('chat', 'group') THEN 'Channel ' || id ELSE name END$$, true, '{channel_type}')
  FROM unnest(ARRAY['mail_channel', 'discuss_channel']) t;   -- 16 / 17+
SELECT pg_temp.odoo_anon_rule(t, 'description', $$'Channel ' || id || ' description'$$) FROM unnest(ARRAY['mail_channel', 'discuss_channel']) t;
SELECT pg_temp.odoo_anon_rule(t, 'custom_channel_name', $$'Channel name ' || id$$) FROM unnest(ARRAY['mail_channel_member', 'discuss_channel_member']) t;
SELECT pg_temp.odoo_anon_rule('mail_guest', 'name', $$'Guest ' || id$$);
-- documents named after a person
SELECT pg_temp.odoo_anon_rule('hr_contract', 'name', $$'Contract ' || id$$);
SELECT pg_temp.odoo_anon_rule('calendar_event', 'name', $$'Meeting ' || id$$);
SELECT pg_temp.odoo_anon_rule('mail_activity', 'res_name', $$'Record ' || coalesce(res_id, id)$$, true, '{res_id}');
-- mail templates: placeholders ({{ object.partner_id.email }}) kept, hard-coded addresses, numbers and names scrubbed
SELECT pg_temp.odoo_anon_rule('mail_template', c, format('pg_temp.odoo_scrub(%I)', c))
  FROM unnest(ARRAY['email_from', 'email_to', 'email_cc', 'reply_to', 'partner_to']) c;
SELECT pg_temp.odoo_anon_rule('mail_template', c, format('pg_temp.odoo_scrub_json(%I)::jsonb', c)) FROM unnest(ARRAY['body_html', 'subject']) c;
-- views (website pages are ir.ui.view records): text scrubbed, markup kept
SELECT pg_temp.odoo_anon_rule('ir_ui_view', 'arch_db', $$pg_temp.odoo_scrub_json(arch_db)::jsonb$$);
-- server logs: messages quote recipients and records
SELECT pg_temp.odoo_anon_rule('ir_logging', 'message', $$'Log ' || id$$);

-- attachments: names, descriptions, share tokens and extracted text (not the technical asset bundles)
SELECT pg_temp.odoo_anon_rule('ir_attachment', 'name',
  $$CASE WHEN res_model IN ('ir.ui.view', 'ir.ui.menu', 'ir.module.module') OR url LIKE '/web/%' THEN name
         ELSE 'attachment' || id || coalesce(substring(name from '\.[A-Za-z0-9]{1,8}$'), '') END$$, true, '{res_model,url}');
SELECT pg_temp.odoo_anon_rule('ir_attachment', 'description', $$'Attachment ' || id$$);
SELECT pg_temp.odoo_anon_rule('ir_attachment', 'url',
  $$CASE WHEN type = 'url' AND url NOT LIKE '/%' THEN 'https://example.invalid/attachment/' || id ELSE url END$$, true, '{type}');
SELECT pg_temp.odoo_anon_rule('ir_attachment', c, 'NULL', false) FROM unnest(ARRAY['index_content', 'access_token']) c;

-- employees (17+: private_* on hr_employee; 16: the private address is a res_partner, done above)
SELECT pg_temp.odoo_anon_rule('resource_resource', 'name', $$'Resource ' || id$$);
SELECT pg_temp.odoo_anon_rule('hr_employee', 'name', $$'Resource ' || resource_id$$, true, '{resource_id}');
SELECT pg_temp.odoo_anon_rule('hr_employee', c, $$'employee' || id || '@example.invalid'$$) FROM unnest(ARRAY['work_email', 'private_email']) c;
SELECT pg_temp.odoo_anon_rule('hr_employee', c, $$'+1' || lpad(id::text, 10, '0')$$)
  FROM unnest(ARRAY['work_phone', 'mobile_phone', 'private_phone', 'emergency_phone', 'phone']) c;
SELECT pg_temp.odoo_anon_rule('hr_employee', 'private_street', $$id || ' Anonymous Street'$$);
SELECT pg_temp.odoo_anon_rule('hr_employee', 'private_street2', $$'Unit ' || id$$);
SELECT pg_temp.odoo_anon_rule('hr_employee', 'private_city', $$'Anytown'$$);
SELECT pg_temp.odoo_anon_rule('hr_employee', 'private_zip', $$lpad((id % 100000)::text, 5, '0')$$);
SELECT pg_temp.odoo_anon_rule('hr_employee', 'private_car_plate', $$'PLATE' || id$$);
SELECT pg_temp.odoo_anon_rule('hr_employee', 'ssnid', $$'SSN' || id$$);
SELECT pg_temp.odoo_anon_rule('hr_employee', 'sinid', $$'SIN' || id$$);
SELECT pg_temp.odoo_anon_rule('hr_employee', 'identification_id', $$'ID' || id$$);
SELECT pg_temp.odoo_anon_rule('hr_employee', 'passport_id', $$'PASSPORT' || id$$);
SELECT pg_temp.odoo_anon_rule('hr_employee', 'permit_no', $$'PERMIT' || id$$);
SELECT pg_temp.odoo_anon_rule('hr_employee', 'visa_no', $$'VISA' || id$$);
SELECT pg_temp.odoo_anon_rule('hr_employee', c, $$'1990-01-01'$$) FROM unnest(ARRAY['birthday', 'spouse_birthdate']) c;
SELECT pg_temp.odoo_anon_rule('hr_employee', 'place_of_birth', $$'Anytown'$$);
SELECT pg_temp.odoo_anon_rule('hr_employee', 'spouse_complete_name', $$'Spouse ' || id$$);
SELECT pg_temp.odoo_anon_rule('hr_employee', 'emergency_contact', $$'Contact ' || id$$);
SELECT pg_temp.odoo_anon_rule('hr_employee', 'pin', $$lpad((id % 10000)::text, 4, '0')$$);
SELECT pg_temp.odoo_anon_rule('hr_employee', 'barcode', $$'EMP' || id$$);
SELECT pg_temp.odoo_anon_rule('hr_employee', c, $$'Note ' || id$$) FROM unnest(ARRAY['notes', 'additional_note']) c;
SELECT pg_temp.odoo_anon_rule('hr_employee', c, $$'Study ' || id$$) FROM unnest(ARRAY['study_field', 'study_school']) c;
-- 2b. Every other installed model: personal columns found from Odoo's metadata (lib/anonymize-discovery.sql)
SELECT pg_temp.odoo_discover_rules();
-- names of this database's people, taken before they are replaced: scrubbed from the texts that are kept
SELECT pg_temp.odoo_collect_names();
\o

-- 3. Apply: one UPDATE per table ------------------------------------------------------------------
INSERT INTO odoo_anonymize_log
SELECT tbl || ' anonymized', pg_temp.odoo_anonymize_table(tbl) FROM (SELECT DISTINCT tbl FROM odoo_anon_rule ORDER BY tbl) t;

-- 4. Marker: this copy has been anonymized (checked by verify.sql) -------------------------------
DO $marker$
BEGIN
  IF pg_temp.odoo_has_table('ir_config_parameter') THEN
    PERFORM pg_temp.odoo_set_param('odoo_mta.anonymized', 'True');
  END IF;
END
$marker$;

-- the column report (no values): `column|table.column|rule` for each column treated (rule: explicit,
-- or the kind found from ir_model_fields, or scrub) and each text-like column left untouched; then the
-- counts (last: a caller that keeps only the tail of the output keeps them)
SELECT 'column', tbl || '.' || col, rule FROM odoo_anon_column ORDER BY rule = 'untouched', tbl, col;
INSERT INTO odoo_anonymize_log
SELECT CASE WHEN rule = 'untouched' THEN 'text columns untouched' ELSE 'columns treated' END, count(*) FROM odoo_anon_column GROUP BY 1;
SELECT step, rows FROM odoo_anonymize_log WHERE rows IS NOT NULL ORDER BY step;
COMMIT;
