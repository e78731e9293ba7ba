-- /metrics counts open incidents by severity and drill at every scrape: a partial index
-- holds only the open ones, so the count does not grow with the resolved history.
CREATE INDEX incidents_open_by_severity ON incidents (severity, drill) WHERE status <> 'resolved';
