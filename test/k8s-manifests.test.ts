// The container images and Kubernetes manifests of issue 7, checked offline:
//   - `kubectl kustomize` renders both overlays (k8s/overlays/dev, k8s/overlays/production);
//   - every rendered object validates against the Kubernetes schema (kubernetes-models), with no
//     field the schema does not know (as `kubectl apply --validate=strict` would insist); KEDA's
//     objects, which kubernetes-models does not cover, are checked by hand;
//   - the project's own rules: pinned images, resources, probes, GPU scheduling, secrets only by
//     reference, a ServiceAccount without API access, NetworkPolicies, the KEDA trigger;
//   - the Dockerfiles pass infra/lint-dockerfiles.mjs and say what each image promises;
//   - infra/healthcheck.mjs, the images' HEALTHCHECK, answers as it should.
// Rendering needs a kubectl with kustomize v5: without one, the rendering checks are skipped with one
// line (under CI=true too: no package source here provides a current kubectl), and every manifest file
// is still validated on its own against the Kubernetes schemas ("k8s/ source files" below).
import { spawn, spawnSync } from 'node:child_process';
import { copyFileSync, cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { envOf, lintDockerfile, parseDockerfile, stagesOf } from '../infra/lint-dockerfiles.mjs';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(import.meta.url);

/** Whether `kubectl version --client` names a kustomize of major version 5 or later. */
function kubectlWithKustomize5(): boolean {
  const version = spawnSync('kubectl', ['version', '--client'], { encoding: 'utf8' });
  const kustomize = /Kustomize Version: v(\d+)\./.exec(version.stdout ?? '');
  return version.status === 0 && kustomize !== null && Number(kustomize[1]) >= 5;
}
const HAS_KUBECTL = kubectlWithKustomize5();
if (!HAS_KUBECTL) {
  console.warn('test/k8s-manifests.test.ts: no kubectl with kustomize v5 on PATH; skipping the checks of the rendered overlays (the manifest files are still schema-checked one by one)');
}
const describeRendered = HAS_KUBECTL ? describe : describe.skip;

// ---- helpers: objects --------------------------------------------------------------------------

type Labels = Record<string, string>;
// Rendered manifests are plain parsed YAML; the helpers below read them field by field.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type K8sObject = { apiVersion: string; kind: string; metadata: { name: string; namespace?: string; labels?: Labels; annotations?: Labels }; [field: string]: any };
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Json = any;

function kustomize(dir: string): K8sObject[] {
  if (!HAS_KUBECTL) throw new Error('kubectl is needed to render the kustomize overlays (`kubectl kustomize`), and it is not on PATH');
  const result = spawnSync('kubectl', ['kustomize', dir], { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  if (result.status !== 0) throw new Error(`kubectl kustomize ${dir} failed: ${result.stderr}`);
  return parseObjects(result.stdout, dir);
}

function parseObjects(text: string, source: string): K8sObject[] {
  const objects: K8sObject[] = [];
  for (const document of parseAllDocuments(text)) {
    if (document.errors.length > 0) throw new Error(`${source}: ${document.errors.map((error) => error.message).join('; ')}`);
    const value = document.toJS();
    if (value !== null && value !== undefined) objects.push(value as K8sObject);
  }
  return objects;
}

const WORKLOAD_KINDS = new Set(['Deployment', 'StatefulSet', 'DaemonSet', 'ReplicaSet', 'Job', 'CronJob', 'Pod']);

function podSpecOf(object: K8sObject): Json | undefined {
  if (object.kind === 'Pod') return object.spec;
  if (object.kind === 'CronJob') return object.spec?.jobTemplate?.spec?.template?.spec;
  return WORKLOAD_KINDS.has(object.kind) ? object.spec?.template?.spec : undefined;
}

function podLabelsOf(object: K8sObject): Labels {
  if (object.kind === 'Pod') return object.metadata.labels ?? {};
  if (object.kind === 'CronJob') return object.spec?.jobTemplate?.spec?.template?.metadata?.labels ?? {};
  return object.spec?.template?.metadata?.labels ?? {};
}

function workloads(objects: K8sObject[]): K8sObject[] {
  return objects.filter((object) => WORKLOAD_KINDS.has(object.kind));
}

function containersOf(object: K8sObject): Json[] {
  const spec = podSpecOf(object);
  return [...(spec?.initContainers ?? []), ...(spec?.containers ?? [])];
}

function find(objects: K8sObject[], kind: string, name: string): K8sObject {
  const found = objects.find((object) => object.kind === kind && object.metadata.name === name);
  if (!found) throw new Error(`no ${kind} ${name} among ${objects.map((object) => `${object.kind}/${object.metadata.name}`).join(', ')}`);
  return found;
}

/** A label selector (matchLabels + matchExpressions) against a set of labels. */
function selects(selector: Json, labels: Labels): boolean {
  for (const [key, value] of Object.entries(selector?.matchLabels ?? {})) if (labels[key] !== value) return false;
  for (const { key, operator, values = [] } of selector?.matchExpressions ?? []) {
    const has = key in labels;
    if (operator === 'In' && !(has && values.includes(labels[key]))) return false;
    if (operator === 'NotIn' && has && values.includes(labels[key])) return false;
    if (operator === 'Exists' && !has) return false;
    if (operator === 'DoesNotExist' && has) return false;
  }
  return true;
}

/** The environment a container gets from its ConfigMaps (envFrom) and literal env values. */
function environmentOf(objects: K8sObject[], container: Json): Map<string, string> {
  const env = new Map<string, string>();
  for (const source of container.envFrom ?? []) {
    if (!source.configMapRef) continue;
    const configMap = find(objects, 'ConfigMap', source.configMapRef.name);
    for (const [key, value] of Object.entries(configMap.data ?? {})) env.set(key, String(value));
  }
  for (const variable of container.env ?? []) if (variable.value !== undefined) env.set(variable.name, String(variable.value));
  return env;
}

function imageIsPinned(image: string): boolean {
  if (/@sha256:[0-9a-f]{64}$/.test(image)) return true;
  const last = image.split('/').pop() ?? '';
  const tag = last.includes(':') ? last.slice(last.lastIndexOf(':') + 1) : '';
  return tag !== '' && tag !== 'latest';
}

// ---- helpers: schema validation ------------------------------------------------------------------

type ModelClass = new (data: unknown) => { validate(): void };

/** kubernetes-models' class for an apiVersion/kind (`kubernetes-models/apps/v1/Deployment`), if any. */
function modelFor(apiVersion: string, kind: string): ModelClass | undefined {
  try {
    return (require(`kubernetes-models/${apiVersion}/${kind}`) as Record<string, ModelClass>)[kind];
  } catch {
    return undefined;
  }
}

// kubernetes-models' JSON schemas accept fields they do not know (a typo such as `readinesProbe`
// passes). The declaration files beside them list every field of every type, so they are walked
// here to find unknown fields, as the API server's strict field validation would.
type FieldType = { kind: 'leaf' } | { kind: 'ref'; file: string } | { kind: 'array'; item: FieldType } | { kind: 'map'; value: FieldType };
const fieldTables = new Map<string, Map<string, FieldType> | null>();

function resolveDeclaration(specifier: string, fromDir: string): string {
  if (specifier.startsWith('.')) return resolve(fromDir, `${specifier}.d.ts`);
  for (let dir = fromDir; ; dir = dirname(dir)) {
    const candidate = join(dir, 'node_modules', `${specifier}.d.ts`);
    if (existsSync(candidate)) return candidate;
    if (dirname(dir) === dir) throw new Error(`cannot find the declarations of ${specifier} from ${fromDir}`);
  }
}

function parseFieldType(text: string, imports: Map<string, string>): FieldType {
  const type = text.trim();
  const array = /^Array<([\s\S]+)>$/.exec(type);
  if (array) return { kind: 'array', item: parseFieldType(array[1], imports) };
  const map = /^\{\s*\[key: string\]: ([^;]+);?/.exec(type);
  if (map) return { kind: 'map', value: parseFieldType(map[1], imports) };
  const file = imports.get(type);
  return file ? { kind: 'ref', file } : { kind: 'leaf' };
}

/** The fields of the interface a kubernetes-models declaration file exports; null for type aliases. */
function fieldTable(file: string): Map<string, FieldType> | null {
  if (fieldTables.has(file)) return fieldTables.get(file)!;
  const text = readFileSync(file, 'utf8');
  const imports = new Map<string, string>();
  for (const [, names, specifier] of text.matchAll(/import \{ ([^}]+) \} from "([^"]+)";/g)) {
    if (specifier === '@kubernetes-models/base') continue;
    for (const name of names.split(',')) imports.set(name.trim(), resolveDeclaration(specifier, dirname(file)));
  }
  const start = text.search(/^export interface \w+/m);
  let table: Map<string, FieldType> | null = null;
  if (start !== -1) {
    const body = text.slice(text.indexOf('{', start) + 1, text.indexOf('\n}', start)).replace(/\/\*\*[\s\S]*?\*\//g, '');
    table = new Map();
    for (const [, name, type] of body.matchAll(/^ {4}"([^"]+)"\??: ([\s\S]*?);$/gm)) table.set(name, parseFieldType(type, imports));
  }
  fieldTables.set(file, table);
  return table;
}

function unknownFields(value: Json, type: FieldType, path: string, found: string[]): void {
  if (value === null || value === undefined) return;
  if (type.kind === 'array' && Array.isArray(value)) value.forEach((item, index) => unknownFields(item, type.item, `${path}[${index}]`, found));
  else if (type.kind === 'map' && typeof value === 'object') for (const [key, item] of Object.entries(value)) unknownFields(item, type.value, `${path}.${key}`, found);
  else if (type.kind === 'ref' && typeof value === 'object' && !Array.isArray(value)) {
    const table = fieldTable(type.file);
    if (!table) return;
    for (const [key, item] of Object.entries(value)) {
      const fieldType = table.get(key);
      if (!fieldType) found.push(`${path}.${key}`);
      else unknownFields(item, fieldType, `${path}.${key}`, found);
    }
  }
}

/** Problems with one object: schema violations and unknown fields; `undefined` when no schema exists. */
function schemaProblems(object: K8sObject): string[] | undefined {
  const Model = modelFor(object.apiVersion, object.kind);
  if (!Model) return undefined;
  const where = `${object.kind}/${object.metadata?.name}`;
  const problems: string[] = [];
  try {
    new Model(object).validate();
  } catch (error) {
    problems.push(`${where}: ${(error as Error).message}`);
  }
  const declaration = require.resolve(`kubernetes-models/${object.apiVersion}/${object.kind}`).replace(/\.js$/, '.d.ts');
  const unknown: string[] = [];
  unknownFields(object, { kind: 'ref', file: declaration }, where, unknown);
  problems.push(...unknown.map((field) => `unknown field ${field}`));
  return problems;
}

// KEDA (keda.sh/v1alpha1) is a CRD that kubernetes-models does not carry: its shape is checked here.
const SCALED_OBJECT_SPEC = new Set(['scaleTargetRef', 'pollingInterval', 'cooldownPeriod', 'initialCooldownPeriod', 'idleReplicaCount', 'minReplicaCount', 'maxReplicaCount', 'fallback', 'advanced', 'triggers']);
const TRIGGER_FIELDS = new Set(['type', 'name', 'metadata', 'authenticationRef', 'metricType', 'useCachedMetrics']);
const TRIGGER_AUTH_SPEC = new Set(['secretTargetRef', 'env', 'configMapTargetRef', 'podIdentity', 'hashiCorpVault', 'azureKeyVault', 'awsSecretManager', 'gcpSecretManager', 'boundServiceAccountToken']);

function kedaProblems(object: K8sObject): string[] {
  const problems: string[] = [];
  const where = `${object.kind}/${object.metadata?.name}`;
  if (object.apiVersion !== 'keda.sh/v1alpha1') problems.push(`${where}: apiVersion ${object.apiVersion}, expected keda.sh/v1alpha1`);
  if (typeof object.metadata?.name !== 'string' || object.metadata.name === '') problems.push(`${where}: no metadata.name`);
  const spec = object.spec ?? {};
  if (object.kind === 'ScaledObject') {
    for (const key of Object.keys(spec)) if (!SCALED_OBJECT_SPEC.has(key)) problems.push(`${where}: unknown field spec.${key}`);
    if (typeof spec.scaleTargetRef?.name !== 'string') problems.push(`${where}: spec.scaleTargetRef.name is required`);
    for (const field of ['pollingInterval', 'cooldownPeriod', 'minReplicaCount', 'maxReplicaCount']) {
      if (spec[field] !== undefined && !(Number.isInteger(spec[field]) && spec[field] >= 0)) problems.push(`${where}: spec.${field} must be a non-negative integer`);
    }
    if ((spec.minReplicaCount ?? 0) > (spec.maxReplicaCount ?? 100)) problems.push(`${where}: minReplicaCount > maxReplicaCount`);
    if (!Array.isArray(spec.triggers) || spec.triggers.length === 0) problems.push(`${where}: spec.triggers must be a non-empty list`);
    for (const [index, trigger] of (spec.triggers ?? []).entries()) {
      for (const key of Object.keys(trigger)) if (!TRIGGER_FIELDS.has(key)) problems.push(`${where}: unknown field spec.triggers[${index}].${key}`);
      if (typeof trigger.type !== 'string') problems.push(`${where}: spec.triggers[${index}].type is required`);
      // KEDA's metadata is map[string]string: a bare number fails admission.
      for (const [key, value] of Object.entries(trigger.metadata ?? {})) {
        if (typeof value !== 'string') problems.push(`${where}: spec.triggers[${index}].metadata.${key} must be a string, got ${typeof value}`);
      }
    }
  } else if (object.kind === 'TriggerAuthentication') {
    for (const key of Object.keys(spec)) if (!TRIGGER_AUTH_SPEC.has(key)) problems.push(`${where}: unknown field spec.${key}`);
    for (const [index, ref] of (spec.secretTargetRef ?? []).entries()) {
      for (const field of ['parameter', 'name', 'key']) if (typeof ref[field] !== 'string') problems.push(`${where}: spec.secretTargetRef[${index}].${field} is required`);
    }
  } else {
    problems.push(`${where}: KEDA kind ${object.kind} is not checked by this test`);
  }
  return problems;
}

// ---- helpers: secrets ----------------------------------------------------------------------------

const SECRET_NAMES = ['streamline-database', 'streamline-s3', 'streamline-worker-token', 'streamline-admin-token'];
const SECRET_LOOKING = /PASSWORD|PASSWD|SECRET|TOKEN|CREDENTIAL|PRIVATE|ACCESS_KEY|API_KEY|(^|_)KEY($|_)|DATABASE_URL|CONNECTION/i;
/** user:password@ in a URL, unless both are only $(VAR) references that Kubernetes fills from Secrets. */
function hasInlineCredentials(value: string): boolean {
  return [...value.matchAll(/:\/\/([^/@\s]+):([^/@\s]+)@/g)].some(([, user, password]) => !/^(\$\([A-Za-z_][A-Za-z0-9_]*\))+$/.test(user) || !/^(\$\([A-Za-z_][A-Za-z0-9_]*\))+$/.test(password));
}

type SecretRef = { name: string; key?: string; optional: boolean; where: string };

function secretRefsOf(objects: K8sObject[]): SecretRef[] {
  const refs: SecretRef[] = [];
  for (const object of workloads(objects)) {
    for (const container of containersOf(object)) {
      const where = `${object.kind}/${object.metadata.name}/${container.name}`;
      for (const variable of container.env ?? []) {
        const ref = variable.valueFrom?.secretKeyRef;
        if (ref) refs.push({ name: ref.name, key: ref.key, optional: ref.optional === true, where: `${where} env ${variable.name}` });
      }
      for (const source of container.envFrom ?? []) {
        if (source.secretRef) refs.push({ name: source.secretRef.name, optional: source.secretRef.optional === true, where: `${where} envFrom` });
      }
    }
    for (const volume of podSpecOf(object)?.volumes ?? []) {
      if (volume.secret) refs.push({ name: volume.secret.secretName, optional: volume.secret.optional === true, where: `${object.kind}/${object.metadata.name} volume ${volume.name}` });
    }
  }
  for (const auth of objects.filter((object) => object.kind === 'TriggerAuthentication')) {
    for (const ref of auth.spec?.secretTargetRef ?? []) refs.push({ name: ref.name, key: ref.key, optional: false, where: `TriggerAuthentication/${auth.metadata.name}` });
  }
  return refs;
}

/** Renders an overlay's secrets/ kustomization from its committed *.env.example files, in a copy. */
function renderExampleSecrets(overlay: string): K8sObject[] {
  const copy = mkdtempSync(join(tmpdir(), 'streamline-secrets-'));
  try {
    cpSync(join(ROOT, 'k8s/overlays', overlay, 'secrets'), copy, { recursive: true });
    for (const file of readdirSync(copy)) if (file.endsWith('.env.example')) copyFileSync(join(copy, file), join(copy, file.replace(/\.example$/, '')));
    return kustomize(copy);
  } finally {
    rmSync(copy, { recursive: true, force: true });
  }
}

// ---- the overlays ----------------------------------------------------------------------------------

const OVERLAYS = [
  { overlay: 'dev', namespace: 'streamline-dev' },
  { overlay: 'production', namespace: 'streamline' },
] as const;

const rendered = new Map<string, K8sObject[]>();
function objectsOf(overlay: string): K8sObject[] {
  if (!rendered.has(overlay)) rendered.set(overlay, kustomize(join(ROOT, 'k8s/overlays', overlay)));
  return rendered.get(overlay)!;
}

describeRendered.each(OVERLAYS)('k8s/overlays/$overlay', ({ overlay, namespace }) => {
  let objects: K8sObject[];
  beforeAll(() => {
    objects = objectsOf(overlay);
  });
  const gateway = () => find(objects, 'Deployment', 'streamline-gateway');
  const worker = () => find(objects, 'Deployment', 'streamline-engine-worker');

  it('renders with kubectl kustomize', () => {
    expect(objects.length).toBeGreaterThan(10);
    for (const object of objects) {
      expect(typeof object.apiVersion, `${object.kind}/${object.metadata?.name}`).toBe('string');
      expect(typeof object.metadata?.name).toBe('string');
    }
  });

  it('every object validates against its Kubernetes schema, with no unknown field', () => {
    const problems: string[] = [];
    for (const object of objects) {
      if (object.apiVersion.startsWith('keda.sh/')) {
        problems.push(...kedaProblems(object));
        continue;
      }
      const found = schemaProblems(object);
      if (found === undefined) problems.push(`${object.apiVersion} ${object.kind}/${object.metadata.name}: no schema in kubernetes-models and not a known CRD`);
      else problems.push(...found);
    }
    expect(problems).toEqual([]);
  });

  it(`puts everything in the ${namespace} namespace, which enforces the restricted Pod Security Standard`, () => {
    const ns = find(objects, 'Namespace', namespace);
    expect(ns.metadata.labels?.['pod-security.kubernetes.io/enforce']).toBe('restricted');
    for (const object of objects.filter((candidate) => candidate.kind !== 'Namespace')) {
      expect(object.metadata.namespace, `${object.kind}/${object.metadata.name}`).toBe(namespace);
    }
  });

  it('every container: an image pinned by tag or digest, cpu and memory requests, a memory limit, a restricted securityContext', () => {
    expect(workloads(objects).length).toBeGreaterThanOrEqual(2);
    for (const object of workloads(objects)) {
      const pod = podSpecOf(object);
      for (const container of containersOf(object)) {
        const where = `${object.kind}/${object.metadata.name}/${container.name}`;
        expect(imageIsPinned(container.image ?? ''), `${where}: image ${container.image}`).toBe(true);
        expect(container.resources?.requests?.cpu, `${where}: cpu request`).toBeDefined();
        expect(container.resources?.requests?.memory, `${where}: memory request`).toBeDefined();
        expect(container.resources?.limits?.memory, `${where}: memory limit`).toBeDefined();
        const security = container.securityContext ?? {};
        expect(security.allowPrivilegeEscalation, `${where}: allowPrivilegeEscalation`).toBe(false);
        expect(security.capabilities?.drop, `${where}: capabilities.drop`).toContain('ALL');
        expect(security.privileged ?? false, `${where}: privileged`).toBe(false);
        expect(security.runAsNonRoot ?? pod.securityContext?.runAsNonRoot, `${where}: runAsNonRoot`).toBe(true);
        expect((security.seccompProfile ?? pod.securityContext?.seccompProfile)?.type, `${where}: seccompProfile`).toBe('RuntimeDefault');
        if (podLabelsOf(object)['app.kubernetes.io/name'] === 'streamline') {
          expect(security.readOnlyRootFilesystem, `${where}: readOnlyRootFilesystem`).toBe(true);
        }
      }
      expect(pod.hostNetwork ?? false).toBe(false);
      expect(pod.hostPID ?? false).toBe(false);
    }
  });

  it('has no plaintext secret: no Secret with data, no secret-looking env value, no credentials in URLs or ConfigMaps', () => {
    for (const secret of objects.filter((object) => object.kind === 'Secret')) {
      expect(Object.keys({ ...secret.data, ...secret.stringData }), `Secret/${secret.metadata.name} carries values`).toEqual([]);
    }
    for (const object of workloads(objects)) {
      for (const container of containersOf(object)) {
        for (const variable of container.env ?? []) {
          const where = `${object.kind}/${object.metadata.name}/${container.name} env ${variable.name}`;
          if (variable.value === undefined) continue;
          expect(SECRET_LOOKING.test(variable.name), `${where} has a literal value: use valueFrom.secretKeyRef`).toBe(false);
          expect(hasInlineCredentials(String(variable.value)), `${where} has credentials in a URL`).toBe(false);
        }
      }
    }
    for (const configMap of objects.filter((object) => object.kind === 'ConfigMap')) {
      for (const [key, value] of Object.entries(configMap.data ?? {})) {
        expect(SECRET_LOOKING.test(key), `ConfigMap/${configMap.metadata.name} ${key} looks secret`).toBe(false);
        expect(hasInlineCredentials(String(value)), `ConfigMap/${configMap.metadata.name} ${key} has credentials in a URL`).toBe(false);
      }
    }
  });

  it("refers only to the four Secrets, which the overlay's secrets/ kustomization creates with every key used", () => {
    const refs = secretRefsOf(objects);
    const gatewayRefs = refs.filter((ref) => ref.where.startsWith('Deployment/streamline-gateway/')).map((ref) => `${ref.name}/${ref.key}`);
    expect(gatewayRefs).toEqual(expect.arrayContaining(['streamline-database/DATABASE_URL', 'streamline-s3/AWS_ACCESS_KEY_ID', 'streamline-s3/AWS_SECRET_ACCESS_KEY', 'streamline-worker-token/STREAMLINE_WORKER_TOKEN']));
    const secrets = renderExampleSecrets(overlay);
    for (const secret of secrets) {
      expect(secret.kind).toBe('Secret');
      expect(secret.metadata.namespace, `Secret/${secret.metadata.name}`).toBe(namespace);
    }
    expect(secrets.map((secret) => secret.metadata.name).sort()).toEqual([...SECRET_NAMES].sort());
    for (const ref of refs) {
      expect(SECRET_NAMES, `${ref.where} refers to Secret ${ref.name}`).toContain(ref.name);
      const secret = secrets.find((candidate) => candidate.metadata.name === ref.name)!;
      if (ref.key) expect(Object.keys(secret.data ?? {}), `${ref.where}: key ${ref.key} of Secret ${ref.name}`).toContain(ref.key);
    }
  });

  it('the secrets/ env files are gitignored and only their *.env.example files are tracked', () => {
    const dir = join('k8s/overlays', overlay, 'secrets');
    const ignored = spawnSync('git', ['check-ignore', '-q', join(dir, 'database.env')], { cwd: ROOT });
    if (ignored.error) return; // no git here: nothing to check
    expect(ignored.status, `${dir}/database.env must be gitignored`).toBe(0);
    expect(spawnSync('git', ['check-ignore', '-q', join(dir, 'database.env.example')], { cwd: ROOT }).status).toBe(1);
  });

  it('pods run under a ServiceAccount without an API token and without any role', () => {
    const account = find(objects, 'ServiceAccount', 'streamline');
    expect(account.automountServiceAccountToken).toBe(false);
    expect(objects.filter((object) => /^(Cluster)?Role(Binding)?$/.test(object.kind))).toEqual([]);
    for (const object of workloads(objects)) {
      const pod = podSpecOf(object);
      expect(pod.serviceAccountName, `${object.kind}/${object.metadata.name}`).toBe('streamline');
      expect(pod.automountServiceAccountToken, `${object.kind}/${object.metadata.name}`).toBe(false);
    }
  });

  it('the gateway: /readyz readiness and /healthz liveness on port 4000, PORT=4000, no local workers, a Service and a PodDisruptionBudget', () => {
    const deployment = gateway();
    const [container] = deployment.spec.template.spec.containers;
    const portNumber = (port: string | number) => (typeof port === 'number' ? port : container.ports.find((candidate: Json) => candidate.name === port)?.containerPort);
    expect(container.readinessProbe?.httpGet?.path).toBe('/readyz');
    expect(portNumber(container.readinessProbe.httpGet.port)).toBe(4000);
    expect(container.livenessProbe?.httpGet?.path).toBe('/healthz');
    expect(portNumber(container.livenessProbe.httpGet.port)).toBe(4000);
    const env = environmentOf(objects, container);
    expect(env.get('PORT')).toBe('4000');
    expect(env.get('STREAMLINE_WORKERS')).toBe('0');
    expect(env.get('STREAMLINE_STORAGE')).toMatch(/^s3:\/\/[a-z0-9.-]+\/.+/);
    expect(env.get('STREAMLINE_DATA_DIR')).toMatch(/^\//);

    const podLabels = podLabelsOf(deployment);
    const service = find(objects, 'Service', 'streamline-gateway');
    expect(selects({ matchLabels: service.spec.selector }, podLabels)).toBe(true);
    expect(service.spec.ports).toEqual([expect.objectContaining({ port: 4000, targetPort: 'http' })]);
    expect(portNumber('http')).toBe(4000);

    const budgets = objects.filter((object) => object.kind === 'PodDisruptionBudget' && selects(object.spec.selector, podLabels));
    expect(budgets).toHaveLength(1);
    const [budget] = budgets;
    // It must allow a drain to proceed one replica at a time, never block it forever.
    expect(budget.spec.maxUnavailable ?? 0).toBeGreaterThanOrEqual(1);
  });

  it('the engine workers: the worker token and S3 credentials from Secrets, no database access, the gateway URL, a long grace period to checkpoint', () => {
    const deployment = worker();
    const pod = podSpecOf(deployment);
    expect(pod.terminationGracePeriodSeconds).toBeGreaterThanOrEqual(300);
    const [container] = pod.containers;
    const refs = secretRefsOf(objects).filter((ref) => ref.where.startsWith('Deployment/streamline-engine-worker/'));
    expect(refs.map((ref) => `${ref.name}/${ref.key}`).sort()).toEqual(['streamline-s3/AWS_ACCESS_KEY_ID', 'streamline-s3/AWS_SECRET_ACCESS_KEY', 'streamline-worker-token/STREAMLINE_WORKER_TOKEN']);
    const env = environmentOf(objects, container);
    expect(env.has('DATABASE_URL')).toBe(false);
    const service = find(objects, 'Service', 'streamline-gateway');
    expect(env.get('STREAMLINE_GATEWAY_URL')).toBe(`http://${service.metadata.name}:${service.spec.ports[0].port}`);
    expect(env.get('STREAMLINE_STORAGE')).toBe(environmentOf(objects, gateway().spec.template.spec.containers[0]).get('STREAMLINE_STORAGE'));
  });

  it('every Service, PodDisruptionBudget and NetworkPolicy selects pods that exist', () => {
    const podLabels = workloads(objects).map(podLabelsOf);
    for (const service of objects.filter((object) => object.kind === 'Service')) {
      expect(podLabels.some((labels) => selects({ matchLabels: service.spec.selector }, labels)), `Service/${service.metadata.name}`).toBe(true);
    }
    for (const object of objects.filter((candidate) => candidate.kind === 'PodDisruptionBudget' || candidate.kind === 'NetworkPolicy')) {
      const selector = object.kind === 'NetworkPolicy' ? object.spec.podSelector : object.spec.selector;
      expect(podLabels.some((labels) => selects(selector, labels)), `${object.kind}/${object.metadata.name}`).toBe(true);
    }
  });

  it('NetworkPolicies: default deny, DNS for all, the gateway open on 4000, the workers reaching only the gateway, DNS and the object store', () => {
    const policies = objects.filter((object) => object.kind === 'NetworkPolicy');
    const denyAll = policies.find((policy) => Object.keys(policy.spec.podSelector ?? {}).length === 0 && !policy.spec.ingress && !policy.spec.egress);
    expect(denyAll?.spec.policyTypes?.sort()).toEqual(['Egress', 'Ingress']);

    const rulesFor = (labels: Labels, direction: 'ingress' | 'egress') =>
      policies.filter((policy) => selects(policy.spec.podSelector, labels) && policy.spec.policyTypes.includes(direction === 'ingress' ? 'Ingress' : 'Egress')).flatMap((policy) => policy.spec[direction] ?? []);
    const portsOf = (rules: Json[]) => rules.flatMap((rule) => (rule.ports ?? [{ port: 'any' }]).map((port: Json) => port.port));

    const gatewayLabels = podLabelsOf(gateway());
    const gatewayIngress = rulesFor(gatewayLabels, 'ingress');
    expect(gatewayIngress.some((rule) => !rule.from && rule.ports?.some((port: Json) => port.port === 4000))).toBe(true);
    expect(portsOf(rulesFor(gatewayLabels, 'egress'))).toEqual(expect.arrayContaining([53, 5432]));

    const workerLabels = podLabelsOf(worker());
    expect(rulesFor(workerLabels, 'ingress'), 'workers accept no connections').toEqual([]);
    const workerEgress = rulesFor(workerLabels, 'egress');
    const objectStorePorts = overlay === 'dev' ? [443, 9000] : [443];
    expect(new Set(portsOf(workerEgress))).toEqual(new Set([53, 4000, ...objectStorePorts]));
    for (const rule of workerEgress.filter((candidate) => candidate.ports?.some((port: Json) => port.port === 4000))) {
      expect(rule.to?.length, 'port 4000 only towards the gateway').toBeGreaterThan(0);
      for (const peer of rule.to) expect(selects(peer.podSelector, gatewayLabels)).toBe(true);
    }
  });
});

describeRendered('k8s/overlays/production specifics', () => {
  let objects: K8sObject[];
  beforeAll(() => {
    objects = objectsOf('production');
  });

  it('runs at least two gateway replicas', () => {
    expect(find(objects, 'Deployment', 'streamline-gateway').spec.replicas).toBeGreaterThanOrEqual(2);
  });

  it('GPU workers: one nvidia.com/gpu each, scheduled on GPU nodes, their replica count left to KEDA', () => {
    const deployment = find(objects, 'Deployment', 'streamline-engine-worker');
    const pod = podSpecOf(deployment);
    const [container] = pod.containers;
    expect(String(container.resources.limits['nvidia.com/gpu'])).toBe('1');
    expect(container.image).toMatch(/engine-gpu:/);
    expect(Object.keys(pod.nodeSelector ?? {}).length).toBeGreaterThan(0);
    expect(pod.tolerations).toEqual(expect.arrayContaining([expect.objectContaining({ key: 'nvidia.com/gpu', effect: 'NoSchedule' })]));
    expect(deployment.spec.replicas, 'a fixed replica count would fight the autoscaler on every apply').toBeUndefined();
  });

  it("pins the project's images to a released version through kustomize images:", () => {
    const streamlineImages = workloads(objects).flatMap(containersOf).map((container) => container.image as string);
    expect(streamlineImages.length).toBeGreaterThanOrEqual(2);
    for (const image of streamlineImages) expect(image).toMatch(/^[a-z0-9.-]+(:\d+)?\/[a-z0-9/._-]+(:\d+\.\d+\.\d+[\w.-]*|@sha256:[0-9a-f]{64})$/);
  });

  it('scales the worker Deployment with KEDA on the number of queued and running plans, authenticated by the database Secret', () => {
    const scaledObjects = objects.filter((object) => object.kind === 'ScaledObject');
    expect(scaledObjects).toHaveLength(1);
    const [scaled] = scaledObjects;
    expect(scaled.spec.scaleTargetRef.kind ?? 'Deployment').toBe('Deployment');
    expect(find(objects, 'Deployment', scaled.spec.scaleTargetRef.name).metadata.name).toBe('streamline-engine-worker');
    expect(scaled.spec.maxReplicaCount).toBeGreaterThanOrEqual(1);
    const [trigger] = scaled.spec.triggers;
    expect(trigger.type).toBe('postgresql');
    expect(trigger.metadata.query).toMatch(/^SELECT count\(\*\) FROM plans WHERE status/i);
    expect(trigger.metadata.query).toContain("'QUEUED'");
    expect(Number(trigger.metadata.targetQueryValue)).toBeGreaterThan(0);
    const auth = find(objects, 'TriggerAuthentication', trigger.authenticationRef.name);
    expect(auth.spec.secretTargetRef).toEqual([{ parameter: 'connection', name: 'streamline-database', key: 'DATABASE_URL' }]);
  });

  it('uses external PostgreSQL and S3: no database or object store in the cluster, no custom S3 endpoint', () => {
    const images = workloads(objects).flatMap(containersOf).map((container) => container.image as string);
    expect(images.filter((image) => /postgres|minio/.test(image))).toEqual([]);
    const env = environmentOf(objects, find(objects, 'Deployment', 'streamline-gateway').spec.template.spec.containers[0]);
    expect(env.get('STREAMLINE_S3_FORCE_PATH_STYLE')).toBe('false');
    expect(env.has('AWS_ENDPOINT_URL_S3')).toBe(false);
    expect(env.get('AWS_REGION')).toMatch(/^[a-z]{2}(-[a-z]+)+-\d$/);
  });
});

describeRendered('k8s/overlays/dev specifics', () => {
  let objects: K8sObject[];
  beforeAll(() => {
    objects = objectsOf('dev');
  });

  it('runs one replica of the gateway and one CPU worker without GPU requests or GPU node selection', () => {
    expect(find(objects, 'Deployment', 'streamline-gateway').spec.replicas).toBe(1);
    const deployment = find(objects, 'Deployment', 'streamline-engine-worker');
    expect(deployment.spec.replicas).toBe(1);
    const pod = podSpecOf(deployment);
    const [container] = pod.containers;
    expect(container.image).toMatch(/engine-cpu:/);
    expect(JSON.stringify(container.resources)).not.toContain('nvidia.com/gpu');
    expect(pod.nodeSelector).toBeUndefined();
    expect(pod.tolerations).toBeUndefined();
    expect(objects.filter((object) => object.kind === 'ScaledObject')).toEqual([]);
  });

  it('runs PostgreSQL and MinIO in the cluster, wired to the settings and to the same Secrets', () => {
    const postgres = find(objects, 'StatefulSet', 'postgres');
    const postgresService = find(objects, 'Service', 'postgres');
    expect(selects({ matchLabels: postgresService.spec.selector }, podLabelsOf(postgres))).toBe(true);
    expect(postgresService.spec.ports[0].port).toBe(5432);
    const minio = find(objects, 'Deployment', 'minio');
    const minioService = find(objects, 'Service', 'minio');
    expect(selects({ matchLabels: minioService.spec.selector }, podLabelsOf(minio))).toBe(true);
    const s3Port = minioService.spec.ports.find((port: Json) => port.name === 's3').port;

    const env = environmentOf(objects, find(objects, 'Deployment', 'streamline-gateway').spec.template.spec.containers[0]);
    expect(env.get('AWS_ENDPOINT_URL_S3')).toBe(`http://minio:${s3Port}`);
    expect(env.get('STREAMLINE_S3_FORCE_PATH_STYLE')).toBe('true');
    const bucket = /^s3:\/\/([^/]+)\//.exec(env.get('STREAMLINE_STORAGE') ?? '')?.[1];
    expect(find(objects, 'Job', 'minio-create-bucket').spec.template.spec.containers[0].args).toContain(`local/${bucket}`);

    // MinIO's root user is the key pair the gateway and workers use.
    const minioEnv = minio.spec.template.spec.containers[0].env;
    expect(minioEnv.find((variable: Json) => variable.name === 'MINIO_ROOT_USER').valueFrom.secretKeyRef).toEqual({ name: 'streamline-s3', key: 'AWS_ACCESS_KEY_ID' });
    expect(minioEnv.find((variable: Json) => variable.name === 'MINIO_ROOT_PASSWORD').valueFrom.secretKeyRef).toEqual({ name: 'streamline-s3', key: 'AWS_SECRET_ACCESS_KEY' });
    // The example DATABASE_URL points at the in-cluster Service with the example POSTGRES_* values.
    const example = Object.fromEntries(
      readFileSync(join(ROOT, 'k8s/overlays/dev/secrets/database.env.example'), 'utf8').trim().split('\n').map((line) => [line.slice(0, line.indexOf('=')), line.slice(line.indexOf('=') + 1)]),
    );
    const url = new URL(example.DATABASE_URL);
    expect([url.hostname, url.port, url.username, decodeURIComponent(url.password), url.pathname.slice(1)]).toEqual(['postgres', '5432', example.POSTGRES_USER, example.POSTGRES_PASSWORD, example.POSTGRES_DB]);
  });

  it('lets only Streamline pods reach PostgreSQL and MinIO', () => {
    const policies = objects.filter((object) => object.kind === 'NetworkPolicy');
    const gatewayLabels = podLabelsOf(find(objects, 'Deployment', 'streamline-gateway'));
    const workerLabels = podLabelsOf(find(objects, 'Deployment', 'streamline-engine-worker'));
    const allowedFrom = (target: K8sObject, port: number) =>
      policies
        .filter((policy) => selects(policy.spec.podSelector, podLabelsOf(target)))
        .flatMap((policy) => policy.spec.ingress ?? [])
        .filter((rule) => rule.ports?.some((candidate: Json) => candidate.port === port))
        .flatMap((rule) => rule.from ?? [{ podSelector: {} }]);
    const postgresPeers = allowedFrom(find(objects, 'StatefulSet', 'postgres'), 5432);
    expect(postgresPeers.some((peer) => selects(peer.podSelector, gatewayLabels))).toBe(true);
    expect(postgresPeers.some((peer) => selects(peer.podSelector, workerLabels))).toBe(false);
    const minioPeers = allowedFrom(find(objects, 'Deployment', 'minio'), 9000);
    expect(minioPeers.some((peer) => selects(peer.podSelector, gatewayLabels))).toBe(true);
    expect(minioPeers.some((peer) => selects(peer.podSelector, workerLabels))).toBe(true);
    expect(minioPeers.some((peer) => selects(peer.podSelector, {}))).toBe(false);
  });
});

// ---- the manifest files, one by one (no kubectl needed) ---------------------------------------------

/** Every Kubernetes object in the YAML files under k8s/, as written (before kustomize). */
function sourceObjects(): { file: string; object: K8sObject }[] {
  const found: { file: string; object: K8sObject }[] = [];
  const walk = (dir: string) => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) walk(path);
      else if (/\.ya?ml$/.test(entry.name) && entry.name !== 'kustomization.yaml') {
        for (const object of parseObjects(readFileSync(path, 'utf8'), path)) found.push({ file: path.slice(ROOT.length + 1), object });
      }
    }
  };
  walk(join(ROOT, 'k8s'));
  return found;
}

describe('k8s/ source files', () => {
  it('every object in every manifest file validates against its Kubernetes schema, with no unknown field', () => {
    const objects = sourceObjects();
    expect(objects.map(({ object }) => object.kind)).toEqual(expect.arrayContaining(['Deployment', 'Service', 'NetworkPolicy', 'StatefulSet', 'ScaledObject']));
    const problems: string[] = [];
    for (const { file, object } of objects) {
      const found = object.apiVersion?.startsWith('keda.sh/') ? kedaProblems(object) : schemaProblems(object);
      if (found === undefined) problems.push(`${file}: ${object.apiVersion} ${object.kind}/${object.metadata?.name}: no schema in kubernetes-models and not a known CRD`);
      else problems.push(...found.map((problem) => `${file}: ${problem}`));
    }
    expect(problems).toEqual([]);
  });
});

describe('infra/README.md deployment steps', () => {
  // The commands in the order a reader runs them: the Secrets go into a namespace that must exist first.
  const commands = readFileSync(join(ROOT, 'infra/README.md'), 'utf8').split('\n').filter((line) => /^kubectl /.test(line));

  it.each(['dev', 'production'])('creates the %s namespace before applying its Secrets, and the Secrets before the overlay', (overlay) => {
    const namespace = commands.findIndex((line) => line.startsWith(`kubectl kustomize k8s/overlays/${overlay} | kubectl apply -f - -l pod-security.kubernetes.io/enforce=restricted`));
    const secrets = commands.findIndex((line) => line.startsWith(`kubectl apply -k k8s/overlays/${overlay}/secrets`));
    const apply = commands.findIndex((line) => line.startsWith(`kubectl apply -k k8s/overlays/${overlay}`) && !line.includes('/secrets'));
    expect(namespace).toBeGreaterThanOrEqual(0);
    expect(secrets).toBeGreaterThan(namespace);
    if (overlay === 'production') expect(apply).toBeGreaterThan(secrets);
  });

  it.runIf(HAS_KUBECTL)('selects only the Namespace with that label, so the first apply creates nothing else', () => {
    for (const overlay of ['dev', 'production']) {
      const labelled = kustomize(join(ROOT, 'k8s/overlays', overlay)).filter((object) => object.metadata?.labels?.['pod-security.kubernetes.io/enforce'] === 'restricted');
      expect(labelled.map((object) => object.kind)).toEqual(['Namespace']);
    }
  });
});

describe('the schema check itself', () => {
  const source = (kind: string) => sourceObjects().find(({ object }) => object.kind === kind)!.object;
  it('reports a misspelt field and a wrong type, which kubernetes-models alone would let through', () => {
    const deployment = structuredClone(sourceObjects().find(({ object }) => object.kind === 'Deployment' && object.metadata.name === 'streamline-gateway')!.object);
    deployment.spec.template.spec.containers[0].readinesProbe = deployment.spec.template.spec.containers[0].readinessProbe;
    deployment.spec.replicas = 'two';
    const problems = schemaProblems(deployment)!;
    expect(problems.some((problem) => problem.includes('replicas must be integer'))).toBe(true);
    expect(problems).toContain('unknown field Deployment/streamline-gateway.spec.template.spec.containers[0].readinesProbe');
  });

  it('reports a KEDA trigger whose metadata is not all strings', () => {
    const scaled = structuredClone(source('ScaledObject'));
    scaled.spec.triggers[0].metadata.targetQueryValue = 1;
    scaled.spec.minReplicas = 1;
    expect(kedaProblems(scaled)).toEqual([
      'ScaledObject/streamline-engine-worker: unknown field spec.minReplicas',
      'ScaledObject/streamline-engine-worker: spec.triggers[0].metadata.targetQueryValue must be a string, got number',
    ]);
  });
});

// ---- the images ------------------------------------------------------------------------------------

const DOCKERFILES = ['gateway', 'engine-cpu', 'engine-gpu'].map((name) => join(ROOT, 'infra', `${name}.Dockerfile`));

function finalStage(file: string) {
  const { stages } = stagesOf(parseDockerfile(readFileSync(file, 'utf8')));
  const final = stages[stages.length - 1];
  // The final stage plus the stages it is built on, nearest first.
  const chain = [final];
  while (chain[chain.length - 1].fromStage) chain.push(stages.find((stage) => stage.name === chain[chain.length - 1].fromStage)!);
  const env = new Map<string, string>();
  for (const stage of [...chain].reverse()) for (const [key, value] of envOf(stage)) env.set(key, value);
  const last = (keyword: string) => chain.flatMap((stage) => stage.instructions).filter((instruction) => instruction.keyword === keyword).pop()?.args;
  return { stages, final, chain, env, last };
}

describe('infra/*.Dockerfile', () => {
  it.each(DOCKERFILES)('%s passes infra/lint-dockerfiles.mjs', (file) => {
    expect(lintDockerfile(file)).toEqual([]);
  });

  it('the linter finds what it promises to find', () => {
    const dir = mkdtempSync(join(tmpdir(), 'streamline-lint-'));
    try {
      const file = join(dir, 'bad.Dockerfile');
      const text = [
        'FROM node:latest',
        'ADD https://example.com/x.tgz /x.tgz',
        'RUN apt-get install -y g++',
        'RUN npm ci',
        'RUN npm install --omit=dev left-pad',
        'COPY missing.txt /app/',
        'CMD node server.js',
      ].join('\n');
      writeFileSync(file, text);
      const problems = lintDockerfile(file, { repoRoot: dir }).map((problem: string) => problem.replace(/^[^:]+:\d+: /, ''));
      expect(problems).toEqual(
        expect.arrayContaining([
          '1 stage(s): build dependencies in one stage, the runtime in another',
          'base image node:latest is not pinned by a tag or digest (or is :latest)',
          'ADD: use COPY (ADD fetches URLs and unpacks archives implicitly)',
          'apt-get install without --no-install-recommends',
          'apt-get install without apt-get update in the same RUN (stale package lists)',
          'npm ci without --omit=dev',
          'npm package left-pad is not pinned to a version',
          'COPY source missing.txt does not exist in the repository',
          'the runtime image (stage 0) installs build tools: g++',
          'the final stage (0) has no USER: it would run as root',
          'the final stage (0) has no HEALTHCHECK',
          'CMD is not in exec (JSON array) form: signals would go to a shell',
        ]),
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('accepts development dependencies only in a build stage whose dist/ folders alone reach the image', () => {
    const dir = mkdtempSync(join(tmpdir(), 'streamline-lint-'));
    try {
      const file = join(dir, 'build.Dockerfile');
      const lines = (copy: string) => [
        'FROM node:20.20.2-bookworm-slim AS build',
        'RUN npm ci --ignore-scripts',
        'FROM node:20.20.2-bookworm-slim AS runtime',
        copy,
        'USER 10001:10001',
        'HEALTHCHECK CMD ["node", "-e", "0"]',
        'CMD ["node", "dist/main.js"]',
      ].join('\n');
      const problems = (text: string) => {
        writeFileSync(file, text);
        return lintDockerfile(file, { repoRoot: dir }).map((problem: string) => problem.replace(/^[^:]+:\d+: /, ''));
      };
      expect(problems(lines('COPY --from=build /app/services/engine/dist services/engine/dist'))).toEqual([]);
      expect(problems(lines('COPY --from=build /app /app'))).toEqual(['COPY --from=build /app: stage build has development dependencies; copy only build output (a dist/ folder)']);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('each image runs as the UID the Kubernetes pods name, starts its entry point under tini, and checks its health', () => {
    const manifests = parseObjects(['gateway-deployment.yaml', 'worker-deployment.yaml'].map((file) => readFileSync(join(ROOT, 'k8s/base', file), 'utf8')).join('\n---\n'), 'k8s/base');
    const runAsUser = new Set(manifests.map((object) => podSpecOf(object).securityContext.runAsUser));
    expect([...runAsUser]).toEqual([10001]);
    const expected = {
      gateway: { workdir: '/app/services/gateway', cmd: ['node', '--conditions=streamline-dist', 'dist/streamline-gateway.js'], health: 'http' },
      'engine-cpu': { workdir: '/app/services/engine', cmd: ['node', '--conditions=streamline-dist', 'dist/streamline-worker.js'], health: 'worker' },
      'engine-gpu': { workdir: '/app/services/engine', cmd: ['node', '--conditions=streamline-dist', 'dist/streamline-worker.js'], health: 'worker' },
    } as const;
    for (const [name, want] of Object.entries(expected)) {
      const image = finalStage(join(ROOT, 'infra', `${name}.Dockerfile`));
      expect(image.last('USER'), name).toBe('10001:10001');
      expect(image.last('WORKDIR'), name).toBe(want.workdir);
      expect(JSON.parse(image.last('CMD')!), name).toEqual(want.cmd);
      expect(JSON.parse(image.last('ENTRYPOINT')!), name).toEqual(['/usr/bin/tini', '--']);
      expect(image.last('HEALTHCHECK'), name).toContain(`"/app/infra/healthcheck.mjs", "${want.health}"`);
      expect(image.env.get('STREAMLINE_DATA_DIR'), name).toBe('/var/lib/streamline');
    }
    expect(finalStage(join(ROOT, 'infra/gateway.Dockerfile')).last('EXPOSE')).toBe('4000');
  });

  it('the CPU worker selects the CPU paths and installs nothing for CUDA', () => {
    const file = join(ROOT, 'infra/engine-cpu.Dockerfile');
    const image = finalStage(file);
    expect(image.env.get('STREAMLINE_ONNX_PROVIDER')).toBe('cpu');
    expect(image.env.get('STREAMLINE_BACKEND')).toBe('wasm');
    expect(readFileSync(file, 'utf8')).not.toMatch(/cuda12|tfjs-node-gpu|nvidia/);
  });

  it('the GPU worker: CUDA 12 + cuDNN 9 base, the CUDA 11 / cuDNN 8 libraries beside it, both GPU runtimes installed and selected', () => {
    const file = join(ROOT, 'infra/engine-gpu.Dockerfile');
    const image = finalStage(file);
    const base = image.chain[image.chain.length - 1].from;
    expect(base).toMatch(/^nvidia\/cuda:12\.\d+\.\d+-cudnn-runtime-ubuntu\d+\.\d+$/);
    expect(image.env.get('STREAMLINE_ONNX_PROVIDER')).toBe('cuda');
    expect(image.env.get('STREAMLINE_BACKEND')).toBe('tensorflow');
    const libraryPath = (image.env.get('LD_LIBRARY_PATH') ?? '').split(':');
    expect(libraryPath).toEqual(expect.arrayContaining(['/usr/local/cuda-11.8/lib64', '/usr/local/cuda/lib64']));

    const baseStage = image.chain[image.chain.length - 1];
    const aptInstalls = baseStage.instructions.filter((instruction) => instruction.keyword === 'RUN').map((instruction) => instruction.args).join(' ');
    for (const library of ['cuda-cudart', 'libcublas', 'libcufft', 'libcurand', 'libcusolver', 'libcusparse']) expect(aptInstalls).toContain(`${library}-\${CUDA11_VERSION}`);
    expect(aptInstalls).toContain('libcudnn8=${CUDNN8_VERSION}');

    const deps = image.stages.find((stage) => stage.name === 'deps')!;
    expect(envOf(deps).get('ONNXRUNTIME_NODE_INSTALL')).toBe('cuda12');
    const depsRuns = deps.instructions.filter((instruction) => instruction.keyword === 'RUN').map((instruction) => instruction.args).join('\n');
    // package.json's allowScripts denies onnxruntime-node's install script, so the image runs it itself.
    expect(depsRuns).toContain('node script/install.js');
    expect(depsRuns).toContain('@tensorflow/tfjs-node-gpu@4.22.0');
    expect(depsRuns).toContain('libonnxruntime_providers_cuda.so');
  });

  it('the CPU and gateway images skip the CUDA provider download whichever npm builds them, and copy no .npmrc', () => {
    for (const file of ['infra/engine-cpu.Dockerfile', 'infra/gateway.Dockerfile']) {
      const deps = finalStage(join(ROOT, file)).stages.find((stage) => stage.name === 'deps')!;
      expect(envOf(deps).get('ONNXRUNTIME_NODE_INSTALL'), file).toBe('skip');
    }
    for (const file of DOCKERFILES) expect(readFileSync(file, 'utf8')).not.toMatch(/COPY [^\n]*\.npmrc/);
    const { allowScripts } = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8'));
    expect(allowScripts['onnxruntime-node']).toBe(false);
  });

  it('.dockerignore keeps node_modules, git, local state and credentials out of the build context', () => {
    const ignore = readFileSync(join(ROOT, '.dockerignore'), 'utf8').split('\n');
    for (const entry of ['**/node_modules', '.git', '.streamline', 'k8s', '**/*.env']) expect(ignore).toContain(entry);
  });
});

describe('infra/healthcheck.mjs', () => {
  const script = join(ROOT, 'infra/healthcheck.mjs');
  let server: Server;
  let status = 200;
  beforeAll(async () => {
    server = createServer((request, response) => {
      response.statusCode = request.url === '/healthz' ? status : 404;
      response.end();
    });
    await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
  });
  afterAll(async () => {
    await new Promise((done) => server.close(done));
  });
  // Asynchronous: the server answering the check lives in this process.
  const check = (mode: string, port?: number) =>
    new Promise<{ status: number | null; stdout: string; stderr: string }>((done, fail) => {
      const child = spawn(process.execPath, [script, mode], { env: { ...process.env, PORT: String(port ?? (server.address() as AddressInfo).port) } });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (chunk) => (stdout += chunk));
      child.stderr.on('data', (chunk) => (stderr += chunk));
      child.on('error', fail);
      child.on('close', (status) => done({ status, stdout, stderr }));
    });

  it('http: healthy when /healthz answers 2xx, unhealthy otherwise', async () => {
    status = 200;
    expect((await check('http')).status).toBe(0);
    status = 503;
    const failing = await check('http');
    expect(failing.status).toBe(1);
    expect(failing.stderr).toContain('answered 503');
  });

  it('http: unhealthy when nothing listens', async () => {
    const probe = createServer();
    await new Promise<void>((done) => probe.listen(0, '127.0.0.1', done));
    const { port } = probe.address() as AddressInfo;
    await new Promise((done) => probe.close(done));
    const result = await check('http', port);
    expect(result.status).toBe(1);
    expect(result.stderr).toContain('ECONNREFUSED');
  });

  it('worker: healthy while a streamline-worker process runs', async () => {
    const worker = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)', join(ROOT, 'services/engine/bin/streamline-worker.js')], { stdio: 'ignore' });
    try {
      await new Promise((done) => setTimeout(done, 200));
      const result = await check('worker');
      expect(result.status, result.stderr).toBe(0);
      expect(result.stdout).toContain('streamline-worker is running');
    } finally {
      worker.kill();
    }
  });

  it('refuses an unknown mode', async () => {
    const result = await check('tcp');
    expect(result.status).toBe(1);
    expect(result.stderr).toContain('accepted: http, worker');
  });
});
