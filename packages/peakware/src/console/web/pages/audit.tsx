/** Audit: every admitted admin call and console login, who made it, with what and from where. */
import { api } from '../api.js';
import { useLoad } from '../hooks.js';
import { Badge, Card, ErrorBox, Table, when } from '../ui.js';

export function AuditPage() {
  const audit = useLoad(() => api.console.audit({ limit: 200 }), [], 5000);
  return (
    <Card wide title="Admin calls and logins (newest first)" testId="audit">
      <ErrorBox error={audit.error} />
      <Table
        rows={audit.data ?? []}
        rowKey={(e) => String(e.id)}
        columns={[
          { title: 'when', cell: (e) => when(e.at) },
          { title: 'who', cell: (e) => e.who },
          { title: 'with', cell: (e) => e.via },
          { title: 'from', cell: (e) => e.from },
          { title: 'call', cell: (e) => `${e.method} ${e.url}` },
          {
            title: 'status',
            cell: (e) => (
              <Badge tone={e.status < 300 ? 'ok' : e.status < 500 ? 'warn' : 'bad'}>
                {e.status}
              </Badge>
            ),
          },
        ]}
      />
    </Card>
  );
}
