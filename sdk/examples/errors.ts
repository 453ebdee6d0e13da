// Every failure is a StreamlineError subclass chosen by the server's `extensions.code`.
import { BadUserInputError, ConflictError, NotFoundError, StreamlineClient } from '@streamline/sdk';

const client = new StreamlineClient({ url: process.env.STREAMLINE_URL ?? 'http://localhost:4000/graphql', token: process.env.STREAMLINE_TOKEN });

try {
  await client.plan('no-such-plan');
} catch (error) {
  if (error instanceof NotFoundError) console.log(`not found: ${error.message}`);
  else throw error;
}

const [model] = await client.models();
if (model) {
  try {
    await client.createPruningPlan({ modelId: model.id, layersToPrune: 2, targetSparsity: 0.3 });
  } catch (error) {
    // The server names the field it refused and what it accepts.
    if (error instanceof BadUserInputError) console.log(`bad input on ${error.field}: ${error.message}`);
    else throw error;
  }
}

const [finished] = await client.plans('SUCCEEDED');
if (finished) {
  await client.cancelPlan(finished.id).catch((error: unknown) => {
    if (error instanceof ConflictError) console.log(`conflict: ${error.message}`);
    else throw error;
  });
}
