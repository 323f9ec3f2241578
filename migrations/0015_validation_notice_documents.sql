-- US Regulation F §1006.34: a borrower without an e-mail address gets the validation notice by post. The notice
-- is stored among the loan's legal documents, next to the lawyer's letter, and posted by registered mail.
ALTER TABLE legal_documents DROP CONSTRAINT IF EXISTS legal_documents_kind_check;
ALTER TABLE legal_documents ADD CONSTRAINT legal_documents_kind_check
    CHECK (kind IN ('lawyer_letter', 'validation_notice'));
