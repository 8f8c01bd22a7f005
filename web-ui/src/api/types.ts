//! Wire types of the ChatApp HTTP API, as the server sends them.
//! Shapes only: no behaviour, no transport. Ids are integers, dates RFC 3339 strings.

export interface User {
  id: number;
  username: string;
  display_name: string;
  avatar_url: string | null;
  online: boolean;
  last_seen: string | null;
}

/** GET /api/me: the signed-in user, with the fields only they may see. */
export interface Me extends User {
  email: string;
  created_at: string;
}

export interface Attachment {
  id: number | string;
  url: string;
  mime: string;
  size: number;
  duration_ms: number | null;
  waveform: number[] | null;
}

export interface Message {
  id: number;
  conversation_id: number;
  seq: number;
  sender_id: number;
  kind: 'text' | 'voice';
  body: string;
  attachment: Attachment | null;
  client_id: string | null;
  created_at: string;
}

export interface Conversation {
  id: number;
  kind: 'direct' | 'group';
  title: string | null;
  members: User[];
  last_message: Message | null;
  unread_count: number;
  last_read_seq: number;
  last_seq: number;
  created_at: string;
  last_activity_at: string;
}

export interface RegisterInput {
  username: string;
  email: string;
  password: string;
  display_name?: string;
}

export interface LoginInput {
  /** Username or email. */
  login: string;
  password: string;
}

export interface AuthResult {
  user: User;
  token: string;
  csrf_token: string;
}
