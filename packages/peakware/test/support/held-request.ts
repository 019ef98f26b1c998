/**
 * Test support: an HTTP request held in flight (its body never finishes), so a graceful
 * stop has work to wait for.
 */
import net from 'node:net';

/** Opens a POST to `url` whose body never finishes; destroy the socket to end it. */
export async function holdRequest(url: string): Promise<net.Socket> {
  const { hostname, port, pathname } = new URL(url);
  const socket = net.connect(Number(port), hostname);
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  socket.on('error', () => undefined);
  socket.write(
    `POST ${pathname} HTTP/1.1\r\nhost: ${hostname}\r\ncontent-type: application/json\r\ncontent-length: 1000\r\n\r\n{"a":`,
  );
  // A request sent after it on another connection and answered: by then the server has
  // read the held request's head (a request not yet read would count as an idle socket).
  await fetch(new URL('/health', url));
  return socket;
}
