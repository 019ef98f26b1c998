/** The place of a page a later subsystem brings (stress runs, capacity, drills, ...). */
import { PAGES } from '../pages.js';
import { useRoute } from '../router.js';
import { Card } from '../ui.js';

export function LaterPage() {
  const route = useRoute();
  const page = PAGES.find((p) => p.id === route.page);
  return (
    <Card wide>
      <p class="empty">
        This page comes with {page?.later ?? 'a later subsystem'}. Its place in the console is
        ready: the subsystem adds its component to <code>src/console/web/pages.ts</code>.
      </p>
    </Card>
  );
}
