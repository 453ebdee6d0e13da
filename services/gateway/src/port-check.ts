/**
 * Whether the gateway's port is free, asked before anything is created: a second `npm start` on a
 * busy port should say so in one line, not after it has opened (or created) a database and printed a
 * WebSocket server's error with a stack. The real listen still reports a port taken in between.
 */
import { createServer } from 'node:net';

export class PortInUseError extends Error {}

export async function checkPortFree(port: number, host: string): Promise<void> {
  if (port === 0) return; // the system picks a free one
  await new Promise<void>((resolve, reject) => {
    const probe = createServer();
    probe.once('error', (error: NodeJS.ErrnoException) => {
      if (error.code === 'EADDRINUSE') {
        reject(new PortInUseError(`port ${port} on ${host} is in use (another gateway, or another program): stop it, or choose another port with PORT=…`));
      } else if (error.code === 'EACCES') {
        reject(new PortInUseError(`port ${port} on ${host} may not be used by this user: choose one above 1023 with PORT=…`));
      } else {
        reject(error);
      }
    });
    probe.listen(port, host, () => probe.close(() => resolve()));
  });
}
