import { useState } from 'react';
import { ModelsDocument, type RegisterModelInput } from '@streamline/sdk/browser';
import { ErrorMessage, fieldError } from '../components/ErrorMessage.js';
import { ACTIONS_COLUMN, ScrollTable } from '../components/Table.js';
import { formatCount } from '../format.js';
import { Link, modelPath } from '../router.js';
import { useSession } from '../session.js';
import { useAction } from '../use-action.js';
import { useAsync } from '../use-async.js';

export function ModelsPage() {
  const { client } = useSession();
  const models = useAsync(() => client.query(ModelsDocument, {}), [client]);
  const deleting = useAction();
  const remove = (id: string, name: string) => {
    if (!window.confirm(`Delete model ${name} and its finished plans?`)) return;
    void deleting.run(async () => {
      await client.deleteModel(id);
      models.reload();
    });
  };
  return (
    <>
      <h1>Models</h1>
      <ErrorMessage error={models.error ?? deleting.error} />
      {models.data && models.data.models.length === 0 ? <p>No models yet: register one below.</p> : null}
      {models.data && models.data.models.length > 0 ? (
        <ScrollTable label="Models" columns={['Name', 'Architecture', 'Layers', 'Parameters', 'Status', ACTIONS_COLUMN]}>
          {models.data.models.map((model) => (
            <tr key={model.id}>
              <td>
                <Link to={modelPath(model.id)}>{model.name}</Link>
              </td>
              <td>{model.architecture ?? '—'}</td>
              <td>{model.numLayers ?? '—'}</td>
              <td>{formatCount(model.numParameters)}</td>
              <td>
                <span className={`status status-${model.status.toLowerCase()}`}>{model.status}</span>
                {model.error ? <span className="muted"> {model.error}</span> : null}
              </td>
              <td>
                <button type="button" className="secondary" onClick={() => remove(model.id, model.name)} aria-label={`Delete ${model.name}`}>
                  Delete
                </button>
              </td>
            </tr>
          ))}
        </ScrollTable>
      ) : null}
      <RegisterModel onRegistered={models.reload} />
    </>
  );
}

function RegisterModel({ onRegistered }: { onRegistered: () => void }) {
  const { client } = useSession();
  const [input, setInput] = useState({ name: '', source: '', tokenizer: '' });
  const registering = useAction();
  const { error } = registering;
  const submit = registering.submit(async () => {
    const registration: RegisterModelInput = { name: input.name.trim(), source: input.source.trim(), ...(input.tokenizer.trim() ? { tokenizer: input.tokenizer.trim() } : {}) };
    await client.registerModel(registration);
    setInput({ name: '', source: '', tokenizer: '' });
    onRegistered();
  });
  const field = (name: keyof typeof input, label: string, hint: string, required = false) => {
    const message = fieldError(error, name);
    return (
      <div className="field">
        <label htmlFor={`register-${name}`}>{label}</label>
        <input
          id={`register-${name}`}
          name={name}
          required={required}
          value={input[name]}
          onChange={(e) => setInput({ ...input, [name]: e.target.value })}
          aria-invalid={message ? true : undefined}
          aria-describedby={`register-${name}-hint${message ? ` register-${name}-error` : ''}`}
        />
        <span className="hint" id={`register-${name}-hint`}>
          {hint}
        </span>
        {message ? (
          <span className="field-error" id={`register-${name}-error`}>
            {message}
          </span>
        ) : null}
      </div>
    );
  };
  const unplaced = error && !['name', 'source', 'tokenizer'].some((name) => fieldError(error, name)) ? error : null;
  return (
    <section aria-labelledby="register-heading">
      <h2 id="register-heading">Register a model</h2>
      <form onSubmit={submit} className="form-grid">
        {field('name', 'Name', 'how the console and the API list it', true)}
        {field('source', 'Source URI', 'file://, s3:// or hf://org/name[@revision]', true)}
        {field('tokenizer', 'Tokenizer URI', 'only when it is not beside the weights (llama2.c models)')}
        <div className="actions">
          <button type="submit" disabled={registering.busy}>
            {registering.busy ? 'Registering…' : 'Register'}
          </button>
        </div>
      </form>
      <ErrorMessage error={unplaced} />
    </section>
  );
}
