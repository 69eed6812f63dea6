import { UsageError } from '../errors.js';
import { TemplateError, executeTemplate } from './gotemplate.js';

/**
 * Renders a `--format` template: Go's text/template with Docker's functions (see gotemplate.ts),
 * after Docker's escapes (`\n` and `\t` written literally become a newline and a tab, as docker/cli
 * does). `header` renders a table's header row (its functions pass titles through unchanged).
 * @throws UsageError with the template error in one line.
 */
export function renderTemplate(template: string, data: unknown, opts: { header?: boolean } = {}): string {
  const text = template.replace(/\\n/g, '\n').replace(/\\t/g, '\t');
  try {
    return executeTemplate(text, data, opts);
  } catch (e) {
    if (e instanceof TemplateError) throw new UsageError(`invalid --format ${JSON.stringify(template)}: ${e.message}`);
    throw e;
  }
}
