/**
 * Time left for a watched plan, from measured times rather than from progress alone. A plan's
 * progress is not linear in time: profiling covers its share in seconds, training covers a larger
 * share at the pace of its optimizer steps. Extrapolating progress since the watch began therefore
 * starts low and grows for the first half of training. Instead:
 *
 *   - in a stage that counts steps (training), the rest of the stage is its remaining steps times the
 *     measured time per step (the mean since the stage's first step seen), and the rest of the plan
 *     after it is its remaining progress at the pace measured outside stepped stages (or at the stage's
 *     own pace when nothing else was measured yet);
 *   - in other stages, the remaining progress at the pace measured since the watch began.
 *
 * With a steady step time the estimate during training falls by one step time per step: it converges.
 */

/** What the estimate reads from a progress event. */
export interface EtaObservation {
  readonly progress: number;
  readonly stage: string;
  readonly step: number | null;
  readonly totalSteps: number | null;
}

interface StepMark {
  readonly stage: string;
  readonly step: number;
  readonly progress: number;
  readonly at: number;
}

export class EtaEstimator {
  private first: { progress: number; at: number } | null = null;
  private last: { progress: number; at: number } | null = null;
  /** The first step event seen of the current stepped stage, and the latest. */
  private stepStart: StepMark | null = null;
  private stepLatest: StepMark | null = null;
  /** Time and progress spent in stepped stages, to tell the pace of the other stages. */
  private steppedSeconds = 0;
  private steppedProgress = 0;
  private current: EtaObservation | null = null;

  /** `at`: milliseconds (Date.now() in use; any clock in tests). */
  observe(event: EtaObservation, at: number): void {
    this.first ??= { progress: event.progress, at };
    const stepped = event.step !== null && event.totalSteps !== null;
    if (this.stepLatest && (!stepped || this.stepLatest.stage !== event.stage)) this.closeSteppedStage(at, event.progress);
    if (stepped) {
      const mark = { stage: event.stage, step: event.step!, progress: event.progress, at };
      this.stepStart ??= mark;
      this.stepLatest = mark;
    }
    this.last = { progress: event.progress, at };
    this.current = event;
  }

  /** Seconds left; null until there is something to measure, and once the plan is done. */
  seconds(): number | null {
    const event = this.current;
    if (!event || !this.first || !this.last || event.progress >= 1) return null;
    const otherPace = this.secondsPerProgressOutsideSteps();
    if (this.stepStart && this.stepLatest && event.totalSteps !== null && this.stepLatest.step > this.stepStart.step) {
      const steps = this.stepLatest.step - this.stepStart.step;
      const secondsPerStep = (this.stepLatest.at - this.stepStart.at) / 1000 / steps;
      const progressPerStep = (this.stepLatest.progress - this.stepStart.progress) / steps;
      const stepsLeft = Math.max(0, event.totalSteps - this.stepLatest.step);
      const stageEnd = Math.min(1, this.stepLatest.progress + stepsLeft * progressPerStep);
      const afterPace = otherPace ?? (progressPerStep > 0 ? secondsPerStep / progressPerStep : 0);
      return stepsLeft * secondsPerStep + (1 - stageEnd) * afterPace;
    }
    const pace = otherPace ?? this.overallPace();
    return pace === null ? null : (1 - event.progress) * pace;
  }

  /** Ends the current stepped stage's measurement (a new stage began, or steps stopped). */
  private closeSteppedStage(at: number, progress: number): void {
    if (this.stepStart) {
      this.steppedSeconds += (at - this.stepStart.at) / 1000;
      this.steppedProgress += progress - this.stepStart.progress;
    }
    this.stepStart = null;
    this.stepLatest = null;
  }

  /** Seconds per unit of progress outside stepped stages; null when too little was measured. */
  private secondsPerProgressOutsideSteps(): number | null {
    if (!this.first || !this.last) return null;
    // An open stepped stage counts as stepped up to its latest step.
    const openSeconds = this.stepStart && this.stepLatest ? (this.stepLatest.at - this.stepStart.at) / 1000 : 0;
    const openProgress = this.stepStart && this.stepLatest ? this.stepLatest.progress - this.stepStart.progress : 0;
    const lastAt = this.stepLatest ? this.stepLatest.at : this.last.at;
    const lastProgress = this.stepLatest ? this.stepLatest.progress : this.last.progress;
    const seconds = (lastAt - this.first.at) / 1000 - this.steppedSeconds - openSeconds;
    const progress = lastProgress - this.first.progress - this.steppedProgress - openProgress;
    return progress > 0.01 && seconds >= 1 ? seconds / progress : null;
  }

  private overallPace(): number | null {
    const seconds = (this.last!.at - this.first!.at) / 1000;
    const progress = this.last!.progress - this.first!.progress;
    return progress > 0 && seconds >= 1 ? seconds / progress : null;
  }
}
