-- The version of the template files each borrower message was rendered from (activities/templates): the
-- message file's own version and its channel layout's, e.g. '3+_sms.1'. NULL for messages stored before.
ALTER TABLE messages ADD COLUMN template_version text;
