import { useCallback, useState, type FormEvent } from 'react';

export interface Action {
  /** Runs `task`: clears the last error, is busy while it runs, and keeps what it throws as `error`. */
  run(task: () => Promise<unknown>): Promise<void>;
  /** run(task) as a form's submit handler, the browser's own submit prevented. */
  submit(task: () => Promise<unknown>): (event: FormEvent) => void;
  readonly error: Error | null;
  readonly busy: boolean;
}

/**
 * Something a person does that calls the API (a form's submit, a button), with the error it ended in and
 * whether it is under way. The tasks one Action runs share its error: the last one run says what went wrong.
 */
export function useAction(initialError: Error | null = null): Action {
  const [error, setError] = useState<Error | null>(initialError);
  const [busy, setBusy] = useState(false);
  const run = useCallback(async (task: () => Promise<unknown>) => {
    setBusy(true);
    setError(null);
    try {
      await task();
    } catch (caught) {
      setError(caught instanceof Error ? caught : new Error(String(caught)));
    } finally {
      setBusy(false);
    }
  }, []);
  const submit = useCallback(
    (task: () => Promise<unknown>) => (event: FormEvent) => {
      event.preventDefault();
      void run(task);
    },
    [run],
  );
  return { run, submit, error, busy };
}
