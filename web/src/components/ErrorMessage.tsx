import { BadUserInputError, StreamlineError } from '@streamline/sdk/browser';

/** An API error as the gateway said it, with its code (the gateway's messages name the field and the accepted values). */
export function ErrorMessage({ error }: { error: Error | undefined | null }) {
  if (!error) return null;
  const code = error instanceof StreamlineError ? error.code : null;
  return (
    <p className="error" role="alert">
      {code ? <strong>{code}: </strong> : null}
      {error.message}
    </p>
  );
}

/** The message for one input field, when the API refused exactly that field (`input.source` → `source`). */
export function fieldError(error: Error | undefined | null, field: string): string | null {
  if (!(error instanceof BadUserInputError) || !error.field) return null;
  const name = error.field.replace(/^input\./, '');
  return name === field || name.startsWith(`${field}.`) ? error.message : null;
}
