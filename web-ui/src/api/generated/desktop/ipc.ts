// Generated from the desktop app's Rust side (desktop/tests/typescript.rs). Do not edit.

/** Every Tauri command of the app, by the name the webview invokes. */
export const COMMANDS = [
  'server_get',
  'server_security',
  'forget_session',
  'server_set',
  'register',
  'login',
  'logout',
  'me',
  'update_me',
  'upload_avatar',
  'delete_avatar',
  'search_users',
  'user',
  'conversations',
  'conversation',
  'create_conversation',
  'update_conversation',
  'add_members',
  'remove_member',
  'history',
  'send_message',
  'edit_message',
  'delete_message',
  'react',
  'update_settings',
  'search_messages',
  'mark_read',
  'send_voice',
  'realtime_start',
  'realtime_stop',
  'realtime_send',
  'realtime_reconnect',
  'recorder_start',
  'recorder_pause',
  'recorder_resume',
  'recorder_cancel',
  'recorder_stop',
  'recording_wav',
  'recording_discard',
  'recording_send',
  'set_unread',
  'notify',
] as const;
export type Command = (typeof COMMANDS)[number];

/** The events the app emits to the webview. */
export const EVENTS = [
  'chatapp://event',
  'chatapp://state',
  'chatapp://recorder',
  'chatapp://open',
] as const;
export type AppEvent = (typeof EVENTS)[number];
