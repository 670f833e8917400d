/**
 * Code-unit order of two strings, for every order the broker depends on (placement tie-breaks,
 * which MigrationConfiguration applies, condition order). Never the locale's: `localeCompare`
 * follows the machine's ICU locale, so two replicas could disagree, and its first call maps
 * ICU's collation data (about 3 MiB resident) for nothing.
 */
export const byCodeUnit = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);
