// Types of infra/lint-dockerfiles.mjs, for TypeScript callers (test/k8s-manifests.test.ts).
export interface Instruction {
  line: number;
  keyword: string;
  args: string;
}
export interface Stage {
  name: string;
  from: string;
  fromStage: string | null;
  line: number;
  instructions: Instruction[];
}
export interface DockerignoreRule {
  negated: boolean;
  pattern: string;
  regex: RegExp;
}
export function parseDockerfile(text: string): Instruction[];
export function stagesOf(instructions: Instruction[]): { globalArgs: Map<string, string | undefined>; stages: Stage[] };
export function envOf(stage: Stage): Map<string, string>;
export function dockerignoreRules(text: string): DockerignoreRule[];
export function isIgnored(path: string, rules: DockerignoreRule[]): boolean;
export function lintDockerfile(file: string, options?: { repoRoot?: string }): string[];
export function defaultDockerfiles(repoRoot?: string): string[];
