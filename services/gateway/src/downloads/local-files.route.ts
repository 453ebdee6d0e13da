/**
 * `GET /files/<plan id>/` and `GET /files/<plan id>/<name>`: a finished plan's local (file://) output —
 * its manifest's file list as JSON, or one file — for the plan's tenant only, with the same API token
 * as GraphQL (Authorization: Bearer …). S3 outputs are downloaded through pre-signed URLs instead
 * (PruningPlan.downloads). Only names the output's manifest lists are served, so no path reaches
 * outside the plan's output folder. Every refusal is the API's JSON error.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { RequestHandler } from 'express';
import type { Services } from '../context.js';
import { OUTPUT_MANIFEST, type OutputManifest } from '../engine.js';
import { ErrorCode } from '../errors.js';
import { sendJsonError } from '../limits/http-transport.js';
import { PlanStatus } from '../plans/plan.type.js';

export const FILES_PATH = '/files';

export function localFilesRoute(services: Pick<Services, 'auth' | 'plans'>, log: (message: string) => void): RequestHandler {
  return async (req, res) => {
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.setHeader('Allow', 'GET, HEAD');
      sendJsonError(res, 405, ErrorCode.BAD_USER_INPUT, `${req.method} is not supported here: files are downloaded with GET`);
      return;
    }
    const match = /^\/([^/]+)\/([^/]*)$/.exec(req.path);
    if (!match) {
      sendJsonError(res, 404, ErrorCode.NOT_FOUND, `${FILES_PATH}${req.path}: expected ${FILES_PATH}/<plan id>/ or ${FILES_PATH}/<plan id>/<file name>`);
      return;
    }
    const [planId, name] = [decodeURIComponent(match[1]), decodeURIComponent(match[2])];
    const principal = await services.auth.principal(req.headers.authorization ?? null);
    if (principal.kind !== 'client') {
      const status = principal.kind === 'worker' ? 403 : 401;
      sendJsonError(res, status, status === 403 ? ErrorCode.FORBIDDEN : ErrorCode.UNAUTHENTICATED, 'files need an API token of the plan\'s tenant: Authorization: Bearer <token>');
      return;
    }
    // another tenant's plan is answered as a missing one
    const plan = await services.plans.get(planId, principal.tenantId);
    if (!plan) {
      sendJsonError(res, 404, ErrorCode.NOT_FOUND, `plan ${JSON.stringify(planId)} not found`);
      return;
    }
    if (plan.status !== PlanStatus.SUCCEEDED || !plan.outputUri?.startsWith('file://')) {
      const why = plan.status !== PlanStatus.SUCCEEDED ? `is ${plan.status}` : plan.outputUri ? 'has its output in S3 (use PruningPlan.downloads)' : 'has no output (a dry run)';
      sendJsonError(res, 404, ErrorCode.NOT_FOUND, `plan ${JSON.stringify(planId)} ${why}: no local files to download`);
      return;
    }
    const folder = fileURLToPath(plan.outputUri);
    let manifest: OutputManifest;
    try {
      manifest = JSON.parse(await readFile(join(folder, OUTPUT_MANIFEST), 'utf8')) as OutputManifest;
    } catch (error) {
      log(`files: plan ${planId}: the output manifest cannot be read: ${(error as Error).message}`);
      sendJsonError(res, 404, ErrorCode.NOT_FOUND, `plan ${JSON.stringify(planId)}: its output is no longer there`);
      return;
    }
    if (name === '') {
      res.status(200).json({ files: manifest.files.map((file) => ({ ...file, url: `${FILES_PATH}/${encodeURIComponent(planId)}/${encodeURIComponent(file.name)}` })) });
      return;
    }
    const file = manifest.files.find((entry) => entry.name === name);
    if (!file) {
      sendJsonError(res, 404, ErrorCode.NOT_FOUND, `plan ${JSON.stringify(planId)} has no output file ${JSON.stringify(name)} (its files: ${manifest.files.map((entry) => entry.name).join(', ')})`);
      return;
    }
    res.setHeader('Cache-Control', 'private, no-store');
    res.attachment(file.name);
    res.sendFile(join(folder, file.name), { dotfiles: 'allow' }, (error) => {
      if (!error) return;
      log(`files: plan ${planId}: ${file.name}: ${error.message}`);
      if (!res.headersSent) sendJsonError(res, 404, ErrorCode.NOT_FOUND, `plan ${JSON.stringify(planId)}: ${file.name} is no longer there`);
    });
  };
}
