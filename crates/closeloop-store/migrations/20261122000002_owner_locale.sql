-- The owner's locale chooses the language of the emails about a case.
ALTER TABLE cases ADD COLUMN owner_locale text NOT NULL DEFAULT 'en';
