import type { ReactNode } from 'react';

interface TableProps {
  /** One heading per column, each a `<th scope="col">`. */
  readonly columns: readonly ReactNode[];
  readonly caption?: ReactNode;
  readonly className?: string;
  /** The id of what describes the table when a caption does not (the heat map's figcaption). */
  readonly describedBy?: string;
  /** The body's rows. */
  readonly children: ReactNode;
}

/** A data table: a caption when it has one, a header row of column headings, then the body's rows. */
export function Table({ columns, caption, className, describedBy, children }: TableProps) {
  return (
    <table className={className} aria-describedby={describedBy}>
      {caption === undefined ? null : <caption>{caption}</caption>}
      <thead>
        <tr>
          {columns.map((column, index) => (
            <th scope="col" key={index}>
              {column}
            </th>
          ))}
        </tr>
      </thead>
      <tbody>{children}</tbody>
    </table>
  );
}

/**
 * A Table in a box that scrolls sideways on a narrow screen. The box takes focus and is named
 * "<label>, scrollable", so a keyboard can scroll it and a screen reader says what it holds (axe's
 * scrollable-region-focusable rule).
 */
export function ScrollTable({ label, ...table }: TableProps & { readonly label: string }) {
  return (
    <div className="scroll" tabIndex={0} aria-label={`${label}, scrollable`}>
      <Table {...table} />
    </div>
  );
}

/** The heading of a column of row buttons: named for screen readers, blank on screen. */
export const ACTIONS_COLUMN = <span className="visually-hidden">Actions</span>;
