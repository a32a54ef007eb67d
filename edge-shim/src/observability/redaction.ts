/**
 * What the region's error texts may say of the AWS account, taken out before they are shown beyond
 * the log: ARNs (they name the account, its roles and users) and 12-digit account ids.
 */
const ARN = /\barn:aws[a-z-]*:[^\s"'(),]*/g;
const ACCOUNT_ID = /(?<!\d)\d{12}(?!\d)/g;

export function withoutAccountDetails(text: string): string;
export function withoutAccountDetails(text: string | null): string | null;
export function withoutAccountDetails(text: string | null): string | null {
  return text === null ? null : text.replace(ARN, '<arn>').replace(ACCOUNT_ID, '<account>');
}
