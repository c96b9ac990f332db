-- Migration 2: counting the signatures made under an approval window (done in every signing
-- transaction of a key with a window) reads an index instead of the organisation's requests.
CREATE INDEX signing_requests_window_of ON signing_requests (org_id, window_of);
